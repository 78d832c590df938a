"""Custody of a network's identities: which organisation holds each key, where it lies on disk, and how one
organisation's process connects as an identity it holds (never as another's).

    keyring = Keyring(network, "RA1")        # what RA1's processes (web server, CLI, simulators) may load
    keyring.held                             # ("RA1", "meter:C1", ...) if the crypto puts those meters with RA1
    keyring.connect("RA1")                   # a Gateway as RA1's User1 through RA1's own peer
    keyring.connect("TSO")                   # CustodyError: RA1 holds no key of TSO (nothing is read)

Who holds a key is read from the crypto layout, never assumed: an organisation's users are in its own directory;
a smart meter's key is held by whichever organisation's directory the layout puts the meter's in (today its
consumer's RA, which issued it; the meter operator once meter identities move to it). The MSP id an identity
signs with is its issuing CA's, read from its certificate."""

from functools import cached_property
from pathlib import Path

from cryptography import x509

from clients.contract import Refused


class CustodyError(Refused):
    """An organisation's process asked for a key it does not hold."""


def identity_of(topology, who: str) -> tuple[str, str]:
    """(organisation it acts for, user) of `who`: an organisation (its User1), or a smart meter "meter:<consumer>",
    which acts for its consumer's RA (the RA's collection, the RA's consumers)."""
    if who.startswith("meter:"):
        consumer = who.split(":", 1)[1]
        try:
            return topology.consumer_owner(consumer).name, who
        except KeyError:
            raise Refused(
                f"no meter identity for {consumer!r}: meters exist for the topology's consumers only"
            ) from None
    if who in topology.org_names:
        return who, "User1"
    raise Refused(f"--as must be one of {', '.join(topology.org_names)} or meter:<consumer>, got {who!r}")


def msp_dir(network, org: str, user: str = "User1") -> Path:
    """The MSP directory of `user` acting for `org`: "User1", "Admin", or "meter:<consumer id>" (of org's consumer)."""
    if user.startswith("meter:"):
        consumer = user.split(":", 1)[1]
        owner = network.topology.consumer_owner(consumer)
        if owner.name != org:
            raise KeyError(f"consumer {consumer} belongs to {owner.name}, not {org}")
        return network.layout.meter_dir(consumer) / "msp"
    return network.layout.user_dir(org, user) / "msp"


def holder_of(network, who: str) -> str:
    """The organisation whose directory holds the key of `who` (see identity_of): its processes alone may load it."""
    org, user = identity_of(network.topology, who)
    return _directory_owner(network, msp_dir(network, org, user))


def _directory_owner(network, path: Path) -> str:
    for name in network.topology.org_names:
        if Path(path).is_relative_to(network.layout.org_dir(name)):
            return name
    raise CustodyError(f"no organisation's directory holds {path}")


def _issuing_msp_id(network, msp: Path) -> str:
    """The MSP id of the organisation whose CA issued the certificate in `msp` (public material only)."""
    certificate = x509.load_pem_x509_certificate(next((msp / "signcerts").glob("*.pem")).read_bytes())
    for org in network.topology.organisations:
        for ca in (network.layout.org_msp_dir(org.name) / "cacerts").glob("*.pem"):
            if x509.load_pem_x509_certificate(ca.read_bytes()).subject == certificate.issuer:
                return org.msp_id
    raise CustodyError(f"no organisation's CA issued the certificate in {msp}")


def connect_as(network, org: str, user: str = "User1", **options):
    """A Gateway for `user` acting for `org`, talking over TLS to the peer of the organisation that holds the key
    (Fabric's gateway routes the rest). For tools that play every organisation (tests, benchmarks); an
    organisation's own processes connect through their Keyring."""
    from gateway import connect, grpc_channel_for, identity_from_msp_dir  # need Fabric's generated protobufs

    msp = msp_dir(network, org, user)
    identity, signer = identity_from_msp_dir(msp, _issuing_msp_id(network, msp))
    peer = network.topology.peer_of(_directory_owner(network, msp))
    channel = grpc_channel_for(peer.address, network.layout.node_dir(peer) / "tls" / "ca.crt")
    return connect(identity, signer=signer, channel=channel, **options)


class Keyring:
    """The identities one organisation's processes may load: its own User1 and the meters whose keys the crypto
    layout puts in its directory. Anything else is refused before any file is read."""

    def __init__(self, network, org: str):
        network.topology.organisation(org)  # KeyError naming the organisations
        self.network = network
        self.org = org

    @cached_property
    def held(self) -> tuple[str, ...]:
        meters = tuple(
            f"meter:{consumer}"
            for owner in self.network.topology.organisations
            for consumer in owner.consumers
            if holder_of(self.network, f"meter:{consumer}") == self.org
        )
        return (self.org, *meters)

    def holds(self, who: str) -> bool:
        return who in self.held

    def msp_dir(self, who: str) -> Path:
        """The MSP directory of `who`, which must be this organisation's and lie inside its directory."""
        if not self.holds(who):
            raise CustodyError(f"{self.org}'s processes hold no key of {who}: only {', '.join(self.held)}")
        org, user = identity_of(self.network.topology, who)
        path = msp_dir(self.network, org, user)
        if not path.resolve().is_relative_to(self.network.layout.org_dir(self.org).resolve()):
            raise CustodyError(f"{who}'s key lies outside {self.org}'s directory ({path})")
        return path

    def connect(self, who: str, **options):
        """A Gateway as `who` (one it holds) through this organisation's own peer."""
        self.msp_dir(who)
        org, user = identity_of(self.network.topology, who)
        return connect_as(self.network, org, user, **options)
