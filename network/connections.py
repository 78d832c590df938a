"""Gateway connections to a running network as one of its identities, through that organisation's own peer, and
the sessions (DR and market clients) of a run directory's identities, opened once each.

    sessions = Sessions("run")
    sessions("RA1").dr.declare("1", declaration)        # an organisation's User1
    sessions("meter:C1").market.positions("C1")         # a consumer's smart meter
"""

from pathlib import Path

from clients.session import Session, SessionPool
from network.bringup import Network, NetworkError
from network.identities import connect_as, identity_of, msp_dir

__all__ = ["AS_DB_NAME", "Sessions", "connect_as", "identity_of", "msp_dir", "open_session"]

AS_DB_NAME = "aggregation-system.sqlite"  # the aggregation system's store in a run directory


def open_session(network, who: str, **options) -> Session:
    """A session of `who` (see identity_of) on the network; `options` go to gateway.connect."""
    org, user = identity_of(network.topology, who)
    return Session(connect_as(network, org, user, **options), network.topology, org, who)


class Sessions(SessionPool):
    """The network of a run directory and one session per identity (see identity_of), opened on first use."""

    def __init__(self, run_dir: str | Path):
        root = Path(run_dir)
        if not (root / "network.json").exists():
            raise NetworkError(f"no network in {root}: start one with `gridledger network up --run-dir {root}`")
        self.run_dir = root
        self.network = Network(root)
        self.topology = self.network.topology
        self.as_db_path = root / AS_DB_NAME
        super().__init__(lambda who: open_session(self.network, who))
