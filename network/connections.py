"""Gateway connections to a running network as one of its identities, through the peer of the organisation that
holds the key, and the sessions (DR and market clients) of a run directory's identities, opened once each.

    sessions = Sessions("run", org="RA1")               # RA1's process: RA1's keys only (network.identities)
    sessions("RA1").dr.declare("1", declaration)        # RA1's User1
    sessions("meter:C1").market.positions("C1")         # a meter, if the crypto puts its key with RA1
    sessions("TSO")                                     # CustodyError: RA1's processes hold no key of TSO

Without `org`, Sessions opens any identity on first use: for a command acting as the one identity it is given
(`--as`), and for tests and benchmarks that play every organisation.
"""

from pathlib import Path

from clients.session import Session, SessionPool
from network.bringup import Network, NetworkError
from network.identities import CustodyError, Keyring, connect_as, holder_of, identity_of, msp_dir

__all__ = [
    "AS_DB_NAME",
    "CustodyError",
    "Keyring",
    "Sessions",
    "connect_as",
    "holder_of",
    "identity_of",
    "msp_dir",
    "open_session",
]

AS_DB_NAME = "aggregation-system.sqlite"  # the aggregation system's store in a run directory


def open_session(network, who: str, keyring: Keyring | None = None, **options) -> Session:
    """A session of `who` (see identity_of) on the network, through `keyring` when given (refused unless it holds
    `who`); `options` go to gateway.connect."""
    org, user = identity_of(network.topology, who)
    gateway = keyring.connect(who, **options) if keyring else connect_as(network, org, user, **options)
    return Session(gateway, network.topology, org, who)


class Sessions(SessionPool):
    """The network of a run directory and one session per identity (see identity_of), opened on first use; with
    `org`, only the identities that organisation holds."""

    def __init__(self, run_dir: str | Path, org: str | None = None):
        root = Path(run_dir)
        if not (root / "network.json").exists():
            raise NetworkError(f"no network in {root}: start one with `gridledger network up --run-dir {root}`")
        self.run_dir = root
        self.network = Network(root)
        self.topology = self.network.topology
        self.as_db_path = root / AS_DB_NAME
        if org is not None and org not in self.topology.org_names:
            raise CustodyError(f"no organisation {org!r}: the organisations are {', '.join(self.topology.org_names)}")
        self.keyring = Keyring(self.network, org) if org else None
        super().__init__(lambda who: open_session(self.network, who, self.keyring))

    def __call__(self, who: str) -> Session:
        if self.keyring is not None:
            self.keyring.msp_dir(who)  # refused here, before the pool opens anything
        return super().__call__(who)
