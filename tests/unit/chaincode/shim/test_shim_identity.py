"""ClientIdentity reads the proposal creator as the Go cid package does: MSP id, certificate, id, attributes."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chaincode.shim import ClientIdentity, IdentityError, serialized_identity
from chaincode.shim.identity import ATTRIBUTES_OID, read_serialized_identity
from chaincode.shim.testing import issue_certificate, make_identity


def identity_of(test_identity) -> ClientIdentity:
    return ClientIdentity.from_creator(serialized_identity(test_identity.msp_id, test_identity.credentials))


def test_reads_msp_id_certificate_and_attributes_from_a_fabric_ca_style_certificate():
    meter = make_identity("RA1MSP", "meter-C1", {"role": "meter", "consumer": "C1"})
    identity = identity_of(meter)
    assert identity.msp_id == "RA1MSP"
    assert isinstance(identity.certificate, x509.Certificate)
    assert identity.certificate.extensions.get_extension_for_oid(ATTRIBUTES_OID).critical is False
    assert identity.attributes == {"role": "meter", "consumer": "C1"}
    assert identity.get_attribute_value("consumer") == "C1"
    assert identity.get_attribute_value("absent") is None


def test_id_names_subject_and_issuer_most_specific_first():
    identity = identity_of(make_identity("TSOMSP", "operator"))
    assert identity.id == "x509::CN=operator,OU=client,C=JP::CN=ca.tsomsp,O=TSOMSP"


def test_assert_attribute_value_says_what_is_wrong():
    identity = identity_of(make_identity("RA1MSP", "meter-C4", {"role": "meter"}))
    identity.assert_attribute_value("role", "meter")
    with pytest.raises(IdentityError, match="attribute 'role' equals 'meter', not 'ra'"):
        identity.assert_attribute_value("role", "ra")
    with pytest.raises(IdentityError, match="attribute 'consumer' was not found"):
        identity.assert_attribute_value("consumer", "C4")


def test_certificate_without_the_extension_has_no_attributes():
    assert identity_of(make_identity("AC1MSP", "plain")).attributes == {}


@pytest.mark.parametrize(
    "extension_value, complaint",
    [
        (b"not json", "malformed attribute extension"),
        (b'{"attrs": {"level": 3}}', "must map names to strings"),
    ],
)
def test_malformed_attribute_extension_is_an_identity_error(extension_value, complaint):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd")])
    certificate = issue_certificate(key.public_key(), name, name, key, extension_value)
    with pytest.raises(IdentityError, match=complaint):
        _ = ClientIdentity("RA1MSP", certificate).attributes


def test_creator_that_is_not_a_certificate_is_an_identity_error():
    with pytest.raises(IdentityError, match=r"not an X.509 PEM certificate"):
        ClientIdentity.from_creator(serialized_identity("Org1MSP", b"idemix?"))


def test_serialized_identity_is_the_protobuf_fabric_reads():
    from fabric_protos.msp import identities_pb2

    pem = make_identity("RA1MSP", "x").credentials
    ours = serialized_identity("RA1MSP", pem)
    theirs = identities_pb2.SerializedIdentity(mspid="RA1MSP", id_bytes=pem)
    assert ours == theirs.SerializeToString()
    assert read_serialized_identity(theirs.SerializeToString()) == ("RA1MSP", pem)
    with pytest.raises(IdentityError, match="failed to unmarshal"):
        ClientIdentity.from_creator(b"\x0a\x10short")
