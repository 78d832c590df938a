"""One identity's use of the consortium's chaincode through a gateway (Fabric's or the embedded ledger's): its DR
client and its market client, both acting as the identity's organisation.

    session = Session(gateway, topology, "RA1")                 # or who="meter:C1" for a smart meter of RA1
    session.dr.declare("1", declaration); session.market.book()
"""

import threading
from collections.abc import Callable

from clients.dr import DrClient
from clients.market import MarketClient
from consortium.topology import Topology


class Session:
    def __init__(self, gateway, topology: Topology, org: str, who: str | None = None):
        self.gateway = gateway
        self.who = who or org
        self.org = topology.organisation(org)
        channel = gateway.get_network(topology.channel)
        every_msp_id = [o.msp_id for o in topology.organisations]
        self.dr = DrClient(channel, self.org, every_msp_id, topology)
        self.market = MarketClient(channel, self.org, every_msp_id, topology)

    def close(self) -> None:
        """Ends the event streams opened through the gateway."""
        self.gateway.close()


class SessionPool:
    """Sessions opened on first use, one per name, and closed together; safe across threads (a web server's)."""

    def __init__(self, open_session: Callable[[str], Session]):
        self._open_session = open_session
        self._open: dict[str, Session] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> Session:
        with self._lock:
            if name not in self._open:
                self._open[name] = self._open_session(name)
            return self._open[name]

    def close(self) -> None:
        """Ends every event stream opened through the sessions' gateways (the shared gRPC channels stay)."""
        with self._lock:
            sessions, self._open = list(self._open.values()), {}
        for session in sessions:
            session.close()
