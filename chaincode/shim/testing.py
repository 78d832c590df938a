"""Identities for tests: an X.509 client certificate per caller, issued by a per-organisation test CA, carrying
Fabric attributes in the extension fabric-ca uses — the shape of fabric-gateway's X509Identity — and the
certificate and key encoding the tests of signing and MSP directories build on."""

import datetime
import json
import threading
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import NameOID

from chaincode.shim.identity import ATTRIBUTES_OID


@dataclass(frozen=True)
class TestIdentity:
    msp_id: str
    credentials: bytes  # PEM certificate
    private_key: ec.EllipticCurvePrivateKey
    __test__ = False  # not a pytest test class

    @property
    def private_key_pem(self) -> bytes:
        return private_key_pem(self.private_key)


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
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, organizational_unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    extension = None if attributes is None else json.dumps({"attrs": attributes}).encode()
    certificate = issue_certificate(key.public_key(), subject, authority.name, authority.key, extension)
    return TestIdentity(msp_id, certificate.public_bytes(serialization.Encoding.PEM), key)


def issue_certificate(
    public_key: CertificatePublicKeyTypes,
    subject: x509.Name,
    issuer: x509.Name,
    signing_key: CertificateIssuerPrivateKeyTypes,
    attributes_extension: bytes | None = None,
) -> x509.Certificate:
    """A certificate for `public_key`, valid from five minutes ago for a year, signed by `signing_key` (its own
    key: self-signed), with `attributes_extension` as the raw value of the Fabric attributes extension."""
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
    )
    if attributes_extension is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(ATTRIBUTES_OID, attributes_extension), critical=False
        )
    return builder.sign(signing_key, hashes.SHA256())


def private_key_pem(key: PrivateKeyTypes) -> bytes:
    """The key as an MSP keystore holds it: unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


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
