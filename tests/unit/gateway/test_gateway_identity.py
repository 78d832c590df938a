"""Identities and signing: what Fabric's MSP checks of every signature and serialized identity."""

import os

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import NameOID
from fabric_protos.msp import identities_pb2

from chaincode.shim.testing import issue_certificate, private_key_pem
from gateway.identity import X509Identity, identity_from_msp_dir
from gateway.signing import P256_ORDER, Signer, low_s


def certificate_pem(key, common_name: str = "User1@tso.grid.local") -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return issue_certificate(key.public_key(), name, name, key).public_bytes(serialization.Encoding.PEM)


def write_msp(root, key, cert_key=None):
    """An MSP directory as cryptogen lays it out; cert_key signs a certificate for another key."""
    msp = root / "msp"
    (msp / "signcerts").mkdir(parents=True)
    (msp / "keystore").mkdir()
    (msp / "signcerts" / "User1@tso.grid.local-cert.pem").write_bytes(certificate_pem(cert_key or key))
    (msp / "keystore" / "priv_sk").write_bytes(private_key_pem(key))
    return msp


def verify(cert_pem: bytes, signature: bytes, message: bytes) -> None:
    x509.load_pem_x509_certificate(cert_pem).public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))


def test_signatures_verify_with_the_certificate_and_are_always_low_s():
    key = ec.generate_private_key(ec.SECP256R1())
    signer, cert = Signer(private_key_pem(key)), certificate_pem(key)
    for _ in range(300):
        message = os.urandom(64)
        signature = signer.sign(message)
        verify(cert, signature, message)
        _, s = decode_dss_signature(signature)
        assert s <= P256_ORDER // 2


def test_low_s_turns_a_high_s_signature_into_the_equivalent_low_one():
    key = ec.generate_private_key(ec.SECP256R1())
    message = b"declare 3 kWh"
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    high = encode_dss_signature(r, max(s, P256_ORDER - s))
    low = encode_dss_signature(r, min(s, P256_ORDER - s))
    assert low_s(high) == low
    assert low_s(low) == low
    key.public_key().verify(low_s(high), message, ec.ECDSA(hashes.SHA256()))


def test_a_signature_does_not_verify_for_another_message():
    key = ec.generate_private_key(ec.SECP256R1())
    signature = Signer(private_key_pem(key)).sign(b"one")
    with pytest.raises(InvalidSignature):
        verify(certificate_pem(key), signature, b"two")


@pytest.mark.parametrize(
    "key", [ec.generate_private_key(ec.SECP384R1()), rsa.generate_private_key(65537, 2048)], ids=["P-384", "RSA"]
)
def test_signer_refuses_keys_fabric_identities_here_do_not_use(key):
    with pytest.raises(ValueError, match="P-256"):
        Signer(private_key_pem(key))


def test_signer_refuses_what_is_not_a_key():
    with pytest.raises(ValueError, match="PEM private key"):
        Signer(b"not a key")


def test_serialized_identity_carries_msp_id_and_certificate():
    cert = certificate_pem(ec.generate_private_key(ec.SECP256R1()))
    serialized = identities_pb2.SerializedIdentity.FromString(X509Identity("TSOMSP", cert).serialize())
    assert serialized.mspid == "TSOMSP"
    assert serialized.id_bytes == cert


def test_identity_needs_an_msp_id_and_a_certificate():
    cert = certificate_pem(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ValueError, match="MSP id"):
        X509Identity("", cert)
    with pytest.raises(ValueError, match="PEM certificate"):
        X509Identity("TSOMSP", b"-----BEGIN NOTHING-----")


def test_identity_and_signer_load_from_an_msp_directory(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    identity, signer = identity_from_msp_dir(write_msp(tmp_path, key), "TSOMSP")
    assert identity.msp_id == "TSOMSP"
    verify(identity.credentials, signer.sign(b"reading"), b"reading")


def test_msp_directory_whose_key_is_not_the_certificates_is_refused(tmp_path):
    msp = write_msp(tmp_path, ec.generate_private_key(ec.SECP256R1()), cert_key=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ValueError, match="is not the private key of"):
        identity_from_msp_dir(msp, "TSOMSP")


def test_msp_directory_without_exactly_one_key_says_what_it_found(tmp_path):
    msp = write_msp(tmp_path, ec.generate_private_key(ec.SECP256R1()))
    (msp / "keystore" / "priv_sk").unlink()
    with pytest.raises(ValueError, match=r"exactly one \*_sk in .*keystore, found none"):
        identity_from_msp_dir(msp, "TSOMSP")
