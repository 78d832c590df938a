"""Who may sign in to one organisation's web server, and the ledger session the server holds for each of them.

A web server is one organisation's: it holds that organisation's keys only (network.identities.Keyring: its
User1, and the smart meters whose keys the crypto puts with it), so its accounts are the identities it holds and
nothing it is sent can make it sign as another organisation. It calls the ledger as the signed-in account through
the peer of the organisation holding the key (its own): the ledger decides what each account sees, and nothing
read for one account is ever handed to another. Two backends with one interface:

    FabricBackend(run_dir, "RA1")                RA1's server on the real network of a run directory
    EmbeddedBackend(ledger, topology, identities, org="RA1")   the embedded ledger, for unit tests

`backend.session(account)` is that account's clients.session.Session (its DR and market clients); sessions are
opened once per identity and reused, as fabric-gateway recommends for gateways.
"""

from dataclasses import dataclass
from pathlib import Path

from clients.session import Session, SessionPool
from consortium.topology import Topology
from network.identities import CustodyError


@dataclass(frozen=True)
class Account:
    """One sign-in name and the ledger identity it acts as."""

    name: str  # "TSO", "RA1", or a consumer id such as "C1"
    org: str  # the organisation it acts for (a consumer's: its RA, whose collection holds its data)
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
    smart meter's identity: a consumer is a trader and reads only its own data). A server has the accounts whose
    keys it holds among these."""
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


# Each organisation's web server listens on a port of its peer's block of ports (consortium.topology: offsets 0-4
# are the peer's own), so the servers of one network never collide and move with its port base.
WEB_PORT_OFFSET = 5


def web_port(topology: Topology, org: str) -> int:
    """The port `org`'s web server listens on by default."""
    return topology.peer_of(org).listen_port + WEB_PORT_OFFSET


class _Backend:
    topology: Topology
    org: str | None  # the organisation whose server this is (None: an embedded test ledger's every identity)
    accounts: dict[str, Account]  # the accounts whose keys this server holds
    as_db_path: Path | None  # the aggregation system's store, read for the comparison
    sessions: SessionPool

    def session(self, account: Account) -> Session:
        if self.accounts.get(account.name) != account:
            raise CustodyError(f"{self.org}'s web server holds no key of {account.name}")
        return self._session(account)

    def _session(self, account: Account) -> Session:
        raise NotImplementedError

    def gateway(self, account: Account):
        return self.session(account).gateway

    def close(self) -> None:
        """Ends every event stream opened through the gateways (the shared gRPC channels stay)."""
        self.sessions.close()


class FabricBackend(_Backend):
    """`org`'s server on the running network of a run directory, as `gridledger network up` left it."""

    def __init__(self, run_dir: str | Path, org: str):
        from network.connections import Sessions

        self.sessions = Sessions(run_dir, org=org)
        self.org = org
        self.topology = self.sessions.topology
        held = self.sessions.keyring.held
        self.accounts = {name: a for name, a in accounts_for(self.topology).items() if a.who in held}
        self.as_db_path = self.sessions.as_db_path

    def _session(self, account: Account) -> Session:
        return self.sessions(account.who)


class EmbeddedBackend(_Backend):
    """The embedded ledger, with an identity (.msp_id, .credentials) per sign-in name it holds: for unit tests.
    With `org`, the server of that organisation: given only its identities, it has accounts for those alone."""

    def __init__(
        self,
        ledger,
        topology: Topology,
        identities: dict,
        as_db_path: str | Path | None = None,
        org: str | None = None,
    ):
        self.ledger = ledger
        self.topology = topology
        self.org = org
        every = accounts_for(topology)
        unknown = sorted(set(identities) - set(every))
        if unknown:
            raise ValueError(f"no account named {', '.join(unknown)}")
        if org is not None and org not in identities:
            raise ValueError(f"{org}'s server needs {org}'s own identity")
        self.accounts = {name: a for name, a in every.items() if name in identities}
        self.identities = dict(identities)
        self.as_db_path = Path(as_db_path) if as_db_path else None
        self.sessions = SessionPool(self._open)

    def _session(self, account: Account) -> Session:
        return self.sessions(account.name)

    def _open(self, name: str) -> Session:
        from gateway.embedded import EmbeddedGateway

        account = self.accounts[name]
        return Session(EmbeddedGateway(self.identities[name], self.ledger), self.topology, account.org, account.who)
