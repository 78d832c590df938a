"""Identities for contract tests: an X.509 client certificate per caller, issued by a per-organisation test CA,
carrying Fabric attributes in the extension fabric-ca uses — the shape of fabric-gateway's X509Identity."""

import datetime
import json
import threading
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chaincode.shim.identity import ATTRIBUTES_OID


@dataclass(frozen=True)
class TestIdentity:
    msp_id: str
    credentials: bytes  # PEM certificate
    private_key: ec.EllipticCurvePrivateKey
    __test__ = False  # not a pytest test class


@dataclass(frozen=True)
class _Authority:
    name: x509.Name
    key: ec.EllipticCurvePrivateKey


_authorities: dict[str, _Authority] = {}
_authorities_lock = threading.Lock()


def make_identity(
    msp_id: str,
    common_name: str = "User1",
    attributes: dict[str, str] | None = None,
    organizational_unit: str = "client",
) -> TestIdentity:
    """A client of `msp_id` whose certificate carries `attributes` (e.g. {"role": "meter", "consumer": "C1"})."""
    authority = _authority(msp_id)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, organizational_unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(authority.name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
    )
    if attributes is not None:
        value = json.dumps({"attrs": attributes}).encode()
        builder = builder.add_extension(x509.UnrecognizedExtension(ATTRIBUTES_OID, value), critical=False)
    certificate = builder.sign(authority.key, hashes.SHA256())
    return TestIdentity(msp_id, certificate.public_bytes(serialization.Encoding.PEM), key)


def _authority(msp_id: str) -> _Authority:
    with _authorities_lock:
        if msp_id not in _authorities:
            name = x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, msp_id),
                    x509.NameAttribute(NameOID.COMMON_NAME, f"ca.{msp_id.lower()}"),
                ]
            )
            _authorities[msp_id] = _Authority(name, ec.generate_private_key(ec.SECP256R1()))
        return _authorities[msp_id]
