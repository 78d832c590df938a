"""Crypto material for every organisation: cryptogen for nodes, admins and users; smart-meter identities issued by
the meter operator's CA (the TSO's: in Japan the meters belong to the transmission and distribution operator), each
bound to one consumer by a Fabric certificate attribute, and the meters the simulators play (MeterOperator)."""

import datetime
import ipaddress
import json
import shutil
import subprocess
import threading
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from clients.dr import Meter
from consortium.topology import Node, Topology
from gateway.identity import identity_from_msp_dir
from gateway.signing import Signer

# The X.509 extension in which Fabric (fabric-ca, the chaincode ClientIdentity) carries attributes.
FABRIC_ATTRIBUTES_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")


class CryptoLayout:
    """Where cryptogen (and we, for meters) put each identity under <run>/crypto."""

    def __init__(self, topology: Topology, root: Path):
        self.topology = topology
        self.root = Path(root)

    def org_dir(self, org: str) -> Path:
        if org == self.topology.orderer_org:
            return self.root / "ordererOrganizations" / self.topology.orderer_domain
        return self.root / "peerOrganizations" / self.topology.organisation(org).domain

    def org_msp_dir(self, org: str) -> Path:
        return self.org_dir(org) / "msp"

    def node_dir(self, node: Node) -> Path:
        return self.org_dir(node.org) / ("orderers" if node.kind == "orderer" else "peers") / node.hostname

    def tls_ca_cert(self, org: str) -> Path:
        return self.org_msp_dir(org) / "tlscacerts" / f"tlsca.{self._domain(org)}-cert.pem"

    def user_dir(self, org: str, user: str = "User1") -> Path:
        return self.org_dir(org) / "users" / f"{user}@{self._domain(org)}"

    def admin_dir(self, org: str) -> Path:
        return self.user_dir(org, "Admin")

    def meter_dir(self, consumer: str) -> Path:
        """A meter's identity sits with the meter operator, whose device it is, not with the consumer's RA."""
        return self.org_dir(self.topology.meter_operator) / "meters" / consumer

    def _domain(self, org: str) -> str:
        return self.org_dir(org).name


def cryptogen_config(topology: Topology) -> dict:
    sans = [topology.host, "localhost"]
    return {
        "OrdererOrgs": [
            {
                "Name": topology.orderer_org,
                "Domain": topology.orderer_domain,
                "EnableNodeOUs": True,
                "Specs": [{"Hostname": name, "SANS": sans} for name in topology.orderer_names],
            }
        ],
        "PeerOrgs": [
            {
                "Name": org.name,
                "Domain": org.domain,
                "EnableNodeOUs": True,
                "Specs": [{"Hostname": "peer0", "SANS": sans}],
                "Users": {"Count": 1},
            }
            for org in topology.organisations
        ],
    }


def generate(topology: Topology, root: Path, cryptogen: Path) -> CryptoLayout:
    """Writes every identity of the topology under root (which must not exist yet)."""
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    config = root.parent / "crypto-config.yaml"
    config.write_text(yaml.safe_dump(cryptogen_config(topology), sort_keys=False))
    subprocess.run(
        [str(cryptogen), "generate", f"--config={config}", f"--output={root}"], check=True, stdout=subprocess.DEVNULL
    )
    layout = CryptoLayout(topology, root)
    for org in topology.organisations:
        for consumer in org.consumers:
            issue_meter_identity(layout, consumer)
    return layout


def issue_certificate(
    ca_dir: Path,
    common_name: str,
    *,
    organisational_unit: str | None = None,
    sans: tuple[str, ...] = (),
    attributes: dict | None = None,
    tls: bool = False,
) -> tuple[bytes, bytes]:
    """A certificate and its PKCS#8 key (both PEM), signed by the CA whose *-cert.pem and priv_sk are in ca_dir.

    tls: for a TLS connection, either end (server and client authentication); otherwise a signing identity."""
    ca_cert = x509.load_pem_x509_certificate(next(Path(ca_dir).glob("*-cert.pem")).read_bytes())
    ca_key = serialization.load_pem_private_key((Path(ca_dir) / "priv_sk").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.NameAttribute(NameOID.COUNTRY_NAME, "JP")]
    if organisational_unit:
        names.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, organisational_unit))
    names.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(names))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # Fabric checks a chain as of the certificate's own NotBefore, and cryptogen's CA starts at a
        # rounded minute: a certificate must never claim to predate its CA.
        .not_valid_before(max(now - datetime.timedelta(minutes=5), ca_cert.not_valid_before_utc))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=tls,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_authority_key_id(ca_cert), critical=False)
    )
    if tls:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else x509.DNSName(n) for n in sans]
            ),
            critical=False,
        )
    if attributes is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(FABRIC_ATTRIBUTES_OID, json.dumps({"attrs": attributes}).encode()),
            critical=False,
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """Points at the CA's own subject key identifier: cryptogen derives it with SHA-256, not RFC 5280's SHA-1,
    and OpenSSL/BoringSSL refuse a chain whose identifiers disagree."""
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key())


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def meter_certificate(layout: CryptoLayout, consumer: str) -> tuple[bytes, bytes]:
    """A smart meter's certificate and key (PEM), signed by the meter operator's CA, carrying the consumer id.

    The chaincode reads the attributes {"role": "meter", "consumer": <id>}: it trusts them only in a certificate of
    the meter operator's MSP (as a transaction's creator) or one its CA signed (relayed readings); the MSP accepts
    it as a client of the operator's organisation (OU=client, NodeOUs)."""
    operator = layout.org_dir(layout.topology.meter_operator)
    return issue_certificate(
        operator / "ca",
        f"meter-{consumer}@{operator.name}",
        organisational_unit="client",
        attributes={"role": "meter", "consumer": consumer},
    )


def issue_meter_identity(layout: CryptoLayout, consumer: str) -> Path:
    """Writes a meter's MSP directory (meter_certificate) beside the operator's users; returns it."""
    cert, key = meter_certificate(layout, consumer)
    msp = layout.meter_dir(consumer) / "msp"
    user_msp = layout.user_dir(layout.topology.meter_operator) / "msp"
    for part in ("cacerts", "tlscacerts"):
        shutil.copytree(user_msp / part, msp / part)
    shutil.copy(user_msp / "config.yaml", msp / "config.yaml")
    (msp / "signcerts").mkdir(parents=True)
    (msp / "signcerts" / "cert.pem").write_bytes(cert)
    (msp / "keystore").mkdir()
    (msp / "keystore" / "priv_sk").write_bytes(key)
    return msp


class MeterOperator:
    """The smart meters of a network, as the simulators play them: a topology consumer's meter from its MSP
    directory; any other consumer's (a registered, simulated one) fitted on first use with a certificate from the
    operator's CA, kept in memory. What a DR client relaying readings asks for signatures (clients.dr.MeterSource).
    """

    def __init__(self, layout: CryptoLayout):
        self.layout = layout
        self._meters: dict[str, Meter] = {}
        self._lock = threading.Lock()

    def meter(self, consumer: str) -> Meter:
        with self._lock:
            if consumer not in self._meters:
                self._meters[consumer] = self._fit(consumer)
            return self._meters[consumer]

    def _fit(self, consumer: str) -> Meter:
        msp = self.layout.meter_dir(consumer) / "msp"
        if msp.is_dir():
            identity, signer = identity_from_msp_dir(msp, self.layout.topology.meter_operator_msp_id)
            return Meter(consumer, identity.credentials, signer)
        cert, key = meter_certificate(self.layout, consumer)
        return Meter(consumer, cert, Signer(key))
