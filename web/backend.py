"""Who may sign in to the web, and the ledger connection the server holds for each of them.

The server holds the network's identities (the run directory's crypto) and calls the ledger as the signed-in
account, through that account's own organisation's peer: the ledger decides what each account sees, and nothing
read for one account is ever handed to another. Two backends with one interface:

    FabricBackend(run_dir)                       the real network of a run directory (gateway.client)
    EmbeddedBackend(ledger, identities, ...)     the embedded ledger, for unit tests (gateway.embedded)

`backend.contract(account, "dr")` is that account's view of a contract; gateways are opened once per identity
and reused, as fabric-gateway recommends.
"""

import threading
from dataclasses import dataclass
from pathlib import Path

from consortium.topology import Topology

CHAINCODE = "gridledger"
AS_DB_NAME = "aggregation-system.sqlite"  # where `gridledger dr` keeps the aggregation system's store


@dataclass(frozen=True)
class Account:
    """One sign-in name and the ledger identity it acts as."""

    name: str  # "TSO", "RA1", or a consumer id such as "C1"
    org: str  # the organisation whose peer it talks to
    user: str  # "User1", or "meter:C1" for a consumer's smart-meter identity
    role: str  # tso | ac | ra | consumer
    title: str

    @property
    def consumer(self) -> str | None:
        return self.name if self.role == "consumer" else None


def accounts_for(topology: Topology) -> dict[str, Account]:
    """Every organisation's User1 under the organisation's name, then each consumer under its id (acting as its
    smart meter's identity, issued by its RA: a consumer is a trader and reads only its own data)."""
    accounts = {org.name: Account(org.name, org.name, "User1", org.role, org.title) for org in topology.organisations}
    for org in topology.organisations:
        for consumer in org.consumers:
            accounts[consumer] = Account(
                consumer, org.name, f"meter:{consumer}", "consumer", f"Consumer {consumer} of {org.name}"
            )
    return accounts


def visible_orgs(topology: Topology, account: Account) -> list[str]:
    """The ACs and RAs whose figures `account` may see, each AC followed by its RAs (seed figure 7), as the dr
    contract rules. The web uses it only to narrow (menus, early 404s); the ledger still decides every read."""
    if account.role == "consumer":
        return []
    if account.role == "ra":
        return [account.org]
    acs = [o for o in topology.organisations if o.role == "ac" and (account.role == "tso" or o.name == account.org)]
    return [
        name
        for ac in acs
        for name in (ac.name, *(o.name for o in topology.organisations if o.role == "ra" and o.parent == ac.name))
    ]


class _Backend:
    topology: Topology
    accounts: dict[str, Account]
    as_db_path: Path | None

    def __init__(self):
        self._gateways = {}
        self._lock = threading.Lock()

    def gateway(self, account: Account):
        with self._lock:
            gateway = self._gateways.get(account.name)
            if gateway is None:
                gateway = self._gateways[account.name] = self._connect(account)
            return gateway

    def contract(self, account: Account, name: str):
        return self.gateway(account).get_network(self.topology.channel).get_contract(CHAINCODE, name)

    def chaincode_events(
        self, account: Account, start_block: int | None = None, after_transaction_id: str | None = None
    ):
        network = self.gateway(account).get_network(self.topology.channel)
        return network.get_chaincode_events(
            CHAINCODE, start_block=start_block, after_transaction_id=after_transaction_id
        )

    def msp_id(self, account: Account) -> str:
        return self.topology.organisation(account.org).msp_id

    def close(self) -> None:
        """Ends every event stream opened through the gateways (the shared gRPC channels stay)."""
        with self._lock:
            gateways, self._gateways = list(self._gateways.values()), {}
        for gateway in gateways:
            gateway.close()

    def _connect(self, account: Account):
        raise NotImplementedError


class FabricBackend(_Backend):
    """The running network of a run directory, as `gridledger network up` left it."""

    def __init__(self, run_dir: str | Path):
        super().__init__()
        from network.bringup import Network

        root = Path(run_dir)
        if not (root / "network.json").exists():
            raise FileNotFoundError(f"no network in {root}: start one with `gridledger network up --run-dir {root}`")
        self.network = Network(root)
        self.topology = self.network.topology
        self.accounts = accounts_for(self.topology)
        self.as_db_path = root / AS_DB_NAME

    def _connect(self, account: Account):
        from network.connections import connect_as  # needs Fabric's generated protobufs

        return connect_as(self.network, account.org, account.user)


class EmbeddedBackend(_Backend):
    """The embedded ledger, with an identity (.msp_id, .credentials) per sign-in name: for unit tests."""

    def __init__(self, ledger, topology: Topology, identities: dict, as_db_path: str | Path | None = None):
        super().__init__()
        self.ledger = ledger
        self.topology = topology
        self.accounts = accounts_for(topology)
        missing = sorted(set(self.accounts) - set(identities))
        if missing:
            raise ValueError(f"no identity for {', '.join(missing)}")
        self.identities = identities
        self.as_db_path = Path(as_db_path) if as_db_path else None

    def _connect(self, account: Account):
        from gateway.embedded import EmbeddedGateway

        return EmbeddedGateway(self.identities[account.name], self.ledger)
