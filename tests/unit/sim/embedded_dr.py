"""The DR simulations' test ledger: the embedded ledger with the chaincode on a clock the test moves (the endorser's
clock too, so every step is within the tolerance), and a DR client per organisation, opened on first use."""

from datetime import datetime, timedelta
from types import SimpleNamespace

from meter_keys import OPERATOR_AUTHORITY

from chaincode.server import build_chaincode
from chaincode.shim.testing import make_identity
from clients.dr import DrClient
from consortium import topology as topology_file
from gateway.embedded import EmbeddedGateway, EmbeddedLedger

TOPOLOGY = topology_file.load()


class SimulatedTime:
    """The run's clock and sleep on a test ledger: sleeping moves the clock on at once."""

    def __init__(self, at: datetime):
        self.at = at
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.at += timedelta(seconds=seconds)


def embedded_dr(clock: SimulatedTime, meters=None):
    """(ledger, sessions): `sessions(org).dr` is that organisation's DR client, signing relayed readings with
    `meters` when given; `sessions.topology` the topology."""
    chaincode = build_chaincode()
    chaincode.contracts["dr"].meter_authority = OPERATOR_AUTHORITY
    chaincode.contracts["dr"].clock = clock
    ledger = EmbeddedLedger(
        chaincode,
        collections={
            name: [TOPOLOGY.organisation(m).msp_id for m in members] for name, members in TOPOLOGY.collections().items()
        },
        clock=clock,
    )
    clients = {}

    def sessions(org):
        if org not in clients:
            identity = make_identity(f"{org}MSP", f"User1@{org}")
            dr = DrClient(EmbeddedGateway(identity, ledger).get_network("grid"), TOPOLOGY.organisation(org))
            if meters is not None:
                dr.meters = meters
            clients[org] = SimpleNamespace(dr=dr)
        return clients[org]

    sessions.topology = TOPOLOGY  # type: ignore[attr-defined]
    return ledger, sessions
