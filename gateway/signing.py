"""Signs messages the way Fabric verifies them: ECDSA over SHA-256, low-S normalised, DER-encoded."""

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

# The group order n of P-256 (the curve cryptogen and fabric-ca issue keys on); the low-S rule needs it.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def low_s(signature: bytes) -> bytes:
    """The same ECDSA signature with s in the lower half of the group order.

    (r, s) and (r, n - s) both verify; Fabric accepts only the lower one so a signature cannot be altered into
    a second valid form (bccsp's IsLowS).
    """
    r, s = decode_dss_signature(signature)
    if s > P256_ORDER // 2:
        s = P256_ORDER - s
    return encode_dss_signature(r, s)


class Signer:
    """Signs with one organisation member's private key (PEM, as in an MSP keystore)."""

    def __init__(self, private_key_pem: bytes):
        try:
            key = serialization.load_pem_private_key(private_key_pem, password=None)
        except (ValueError, TypeError) as error:
            raise ValueError(f"not a usable PEM private key: {error}") from error
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            kind = key.curve.name if isinstance(key, ec.EllipticCurvePrivateKey) else type(key).__name__
            raise ValueError(f"Fabric identities here sign with ECDSA P-256; this key is {kind}")
        self._key = key

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def sign(self, message: bytes) -> bytes:
        """A DER signature over SHA-256(message), low-S."""
        return low_s(self._key.sign(message, ec.ECDSA(hashes.SHA256())))

    def __repr__(self) -> str:
        return "Signer(P-256)"
