"""Meter identities (network.crypto): issued by the meter operator's CA, not the consumer's RA, kept with the
operator, each naming its consumer; and the meters the simulators play (MeterOperator) sign readings that the dr
contract's check accepts, for the topology's consumers and for registered ones alike."""

import base64
import datetime
import json
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chaincode.contracts.common import Refusal
from chaincode.contracts.meter_attestation import MeterAuthority, meter_attributes, reading_statement
from clients.dr import Reading, meter_signatures
from consortium import topology as topology_file
from network.crypto import CryptoLayout, MeterOperator, issue_certificate, issue_meter_identity

TOPOLOGY = topology_file.load()


def write_ca(directory, common_name: str) -> x509.Certificate:
    """A CA as cryptogen lays it out: <name>-cert.pem and priv_sk."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True)
    (directory / f"{common_name}-cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "priv_sk").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert


@dataclass(frozen=True)
class Crypto:
    layout: CryptoLayout
    operator_ca: x509.Certificate
    ra1_ca: x509.Certificate


@pytest.fixture
def crypto(tmp_path) -> Crypto:
    """The crypto of the TSO (the meter operator) and RA1 as far as meters need it."""
    layout = CryptoLayout(TOPOLOGY, tmp_path / "crypto")
    operator_ca = write_ca(layout.org_dir("TSO") / "ca", "ca.tso.grid.local")
    ra1_ca = write_ca(layout.org_dir("RA1") / "ca", "ca.ra1.grid.local")
    user_msp = layout.user_dir("TSO") / "msp"
    for part in ("cacerts", "tlscacerts"):
        (user_msp / part).mkdir(parents=True)
        (user_msp / part / "ca.pem").write_bytes(operator_ca.public_bytes(serialization.Encoding.PEM))
    (user_msp / "config.yaml").write_text("NodeOUs:\n  Enable: true\n")
    return Crypto(layout, operator_ca, ra1_ca)


def test_a_meter_identity_is_the_operators_and_names_its_consumer(crypto):
    msp = issue_meter_identity(crypto.layout, "C2")
    assert msp == crypto.layout.org_dir("TSO") / "meters" / "C2" / "msp"  # with the operator, not with RA2
    cert = x509.load_pem_x509_certificate((msp / "signcerts" / "cert.pem").read_bytes())
    cert.verify_directly_issued_by(crypto.operator_ca)
    assert cert.issuer != crypto.ra1_ca.subject
    assert meter_attributes(cert) == {"role": "meter", "consumer": "C2"}
    assert (msp / "cacerts" / "ca.pem").exists() and (msp / "keystore" / "priv_sk").exists()


def test_the_operators_meters_sign_what_the_contract_accepts(crypto):
    layout = crypto.layout
    issue_meter_identity(layout, "C1")
    meters = MeterOperator(layout)
    authority = MeterAuthority([crypto.operator_ca])
    readings = [Reading("RA1", c, "2021-01-14T00:00", 5) for c in ("C1", "RA1-S00001")]
    signed = meter_signatures("1", readings, meters)
    assert set(signed) == {"C1", "RA1-S00001"}
    received = json.loads(json.dumps(signed))  # as the contract receives it
    for consumer, entry in received.items():
        statement = reading_statement("1", consumer, [("2021-01-14T00:00", 5)])
        authority.check_attestation(
            consumer, statement, entry["certificate"].encode(), base64.b64decode(entry["signature"]), None
        )
    assert meters.meter("C1").certificate == (layout.meter_dir("C1") / "msp" / "signcerts" / "cert.pem").read_bytes()
    assert meters.meter("RA1-S00001") is meters.meter("RA1-S00001")  # fitted once


def test_a_meter_certificate_from_an_ras_ca_is_not_the_operators(crypto):
    cert, _ = issue_certificate(
        crypto.layout.org_dir("RA1") / "ca", "meter-C2", attributes={"role": "meter", "consumer": "C2"}
    )
    with pytest.raises(Refusal, match="not issued by the meter operator's CA"):
        MeterAuthority([crypto.operator_ca]).meter_certificate(cert, None)
