"""Who a client is to Fabric: an X.509 identity of an MSP, and loading one with its signer from an MSP directory."""

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from fabric_protos.msp import identities_pb2

from gateway.signing import Signer


class X509Identity:
    """A member of the organisation `msp_id`, known by its PEM certificate (`credentials`)."""

    def __init__(self, msp_id: str, credentials: bytes):
        if not msp_id:
            raise ValueError("an identity needs the MSP id of its organisation, e.g. 'TSOMSP'")
        try:
            self.certificate = x509.load_pem_x509_certificate(credentials)
        except ValueError as error:
            raise ValueError(f"credentials of {msp_id} must be a PEM certificate: {error}") from error
        self.msp_id = msp_id
        self.credentials = credentials

    def serialize(self) -> bytes:
        """msp.SerializedIdentity bytes: the `creator` of proposals and the `identity` of signed requests."""
        return identities_pb2.SerializedIdentity(mspid=self.msp_id, id_bytes=self.credentials).SerializeToString()

    def __repr__(self) -> str:
        return f"X509Identity({self.msp_id!r}, {self.certificate.subject.rfc4514_string()!r})"


def identity_from_msp_dir(path: str | Path, msp_id: str) -> tuple[X509Identity, Signer]:
    """The identity and signer in an MSP directory laid out as cryptogen and fabric-ca write it.

    `path` is the `msp` directory itself: one certificate in `signcerts/`, its private key `*_sk` in `keystore/`.
    """
    msp = Path(path)
    certificate = _only_file(msp / "signcerts", "*.pem")
    key = _only_file(msp / "keystore", "*_sk")
    identity = X509Identity(msp_id, certificate.read_bytes())
    signer = Signer(key.read_bytes())
    if _public_key_info(signer.public_key) != _public_key_info(identity.certificate.public_key()):
        raise ValueError(f"{key} is not the private key of {certificate}")
    return identity, signer


def _public_key_info(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _only_file(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern))
    if len(found) != 1:
        what = ", ".join(p.name for p in found) if found else "none"
        raise ValueError(f"expected exactly one {pattern} in {directory}, found {what}")
    return found[0]
