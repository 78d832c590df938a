"""Who may sign in to the web, and the ledger session the server holds for each of them.

The server holds the network's identities (the run directory's crypto) and calls the ledger as the signed-in
account, through that account's own organisation's peer: the ledger decides what each account sees, and nothing
read for one account is ever handed to another. Two backends with one interface:

    FabricBackend(run_dir)                       the real network of a run directory (network.connections)
    EmbeddedBackend(ledger, identities, ...)     the embedded ledger, for unit tests (gateway.embedded)

`backend.session(account)` is that account's clients.session.Session (its DR and market clients); sessions are
opened once per identity and reused, as fabric-gateway recommends for gateways.
"""

from dataclasses import dataclass
from pathlib import Path

from clients.session import Session, SessionPool
from consortium.topology import Topology


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

    @property
    def who(self) -> str:
        """The identity it acts as, as network.connections names them: "RA1", or "meter:C1"."""
        return self.user if self.role == "consumer" else self.org


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
    as_db_path: Path | None  # the aggregation system's store, read for the comparison
    sessions: SessionPool

    def session(self, account: Account) -> Session:
        raise NotImplementedError

    def gateway(self, account: Account):
        return self.session(account).gateway

    def close(self) -> None:
        """Ends every event stream opened through the gateways (the shared gRPC channels stay)."""
        self.sessions.close()


class FabricBackend(_Backend):
    """The running network of a run directory, as `gridledger network up` left it."""

    def __init__(self, run_dir: str | Path):
        from network.connections import Sessions

        self.sessions = Sessions(run_dir)
        self.topology = self.sessions.topology
        self.accounts = accounts_for(self.topology)
        self.as_db_path = self.sessions.as_db_path

    def session(self, account: Account) -> Session:
        return self.sessions(account.who)


class EmbeddedBackend(_Backend):
    """The embedded ledger, with an identity (.msp_id, .credentials) per sign-in name: for unit tests."""

    def __init__(self, ledger, topology: Topology, identities: dict, as_db_path: str | Path | None = None):
        self.ledger = ledger
        self.topology = topology
        self.accounts = accounts_for(topology)
        missing = sorted(set(self.accounts) - set(identities))
        if missing:
            raise ValueError(f"no identity for {', '.join(missing)}")
        self.identities = identities
        self.as_db_path = Path(as_db_path) if as_db_path else None
        self.sessions = SessionPool(self._open)

    def session(self, account: Account) -> Session:
        return self.sessions(account.name)

    def _open(self, name: str) -> Session:
        from gateway.embedded import EmbeddedGateway

        account = self.accounts[name]
        return Session(EmbeddedGateway(self.identities[name], self.ledger), self.topology, account.org, account.who)
