"""Smart meters for the contract tests: a meter operator's CA (self-signed, in memory), meters it fits for any
consumer, and the transient data of a batch an RA relays with its meters' signatures (clients.dr's encoding)."""

import json
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chaincode.contracts.meter_attestation import MeterAuthority
from chaincode.shim.identity import ATTRIBUTES_OID
from chaincode.shim.testing import issue_certificate, private_key_pem
from clients.dr import Meter, Reading, meter_signatures
from gateway.signing import Signer


class CertificateAuthority:
    """A CA that can issue meter certificates: the operator's, or one an RA or an attacker made up."""

    def __init__(self, name: str):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = issue_certificate(self.key.public_key(), self.name, self.name, self.key)

    def meter(self, consumer: str, *, named: str | None = None, valid_for: timedelta | None = None) -> Meter:
        """A meter whose certificate names `named` (default: `consumer`), with its own key; with `valid_for`, a
        certificate valid from a day ago for that long."""
        key = ec.generate_private_key(ec.SECP256R1())
        attributes = json.dumps({"attrs": {"role": "meter", "consumer": named or consumer}}).encode()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"meter-{consumer}")])
        if valid_for is None:
            certificate = issue_certificate(key.public_key(), subject, self.name, self.key, attributes)
        else:
            now = datetime.now(UTC)
            certificate = (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(self.name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1))
                .not_valid_after(now - timedelta(days=1) + valid_for)
                .add_extension(x509.UnrecognizedExtension(ATTRIBUTES_OID, attributes), critical=False)
                .sign(self.key, hashes.SHA256())
            )
        return Meter(consumer, certificate.public_bytes(serialization.Encoding.PEM), Signer(private_key_pem(key)))


class Meters:
    """One meter per consumer, fitted on first use by `authority` (a clients.dr.MeterSource)."""

    def __init__(self, authority: CertificateAuthority):
        self.authority = authority
        self._meters: dict[str, Meter] = {}

    def meter(self, consumer: str) -> Meter:
        if consumer not in self._meters:
            self._meters[consumer] = self.authority.meter(consumer)
        return self._meters[consumer]


OPERATOR_CA = CertificateAuthority("ca.tso.grid.local")
OPERATOR_AUTHORITY = MeterAuthority([OPERATOR_CA.certificate])
OPERATOR_METERS = Meters(OPERATOR_CA)


def as_readings(batch: list[dict]) -> list[Reading]:
    return [Reading("", item["consumer"], item["minute"], item["wh"]) for item in batch]


def signed_transient(command: str, batch: list[dict], meters, signatures: dict | None = None) -> dict[str, str]:
    """The transient data of a relayed batch: the readings, and each consumer's meter signature over its own."""
    signed = meter_signatures(command, as_readings(batch), meters) if signatures is None else signatures
    return {"readings": json.dumps(batch), "meter_signatures": json.dumps(signed)}
