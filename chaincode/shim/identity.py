"""Who submitted a transaction: the MSP id and X.509 certificate of the proposal creator, and its Fabric attributes."""

import json
from functools import cached_property
from typing import Protocol

from cryptography import x509
from cryptography.x509.oid import NameOID

from chaincode.shim.errors import IdentityError

# The extension in which fabric-ca (and network/crypto.py for meters) puts {"attrs": {name: value}}.
ATTRIBUTES_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
# Attribute type names as Go's crypto/x509 DN printing has them (the ones cryptography lacks by default).
_GO_DN_NAMES = {NameOID.SERIAL_NUMBER: "SERIALNUMBER", NameOID.POSTAL_CODE: "POSTALCODE"}


# msp.SerializedIdentity is two length-delimited protobuf fields, 1 = mspid and 2 = id_bytes. Coding them here keeps
# the in-process path (memory stub, embedded ledger) free of Fabric's generated protobufs.
_MSP_ID_FIELD, _ID_BYTES_FIELD = 1, 2
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


class CreatorIdentity(Protocol):
    """Who proposes a transaction, as fabric-gateway's X509Identity holds it: an MSP id and a PEM certificate."""

    @property
    def msp_id(self) -> str: ...

    @property
    def credentials(self) -> bytes: ...


def serialized_identity(msp_id: str, certificate_pem: bytes) -> bytes:
    """The creator bytes of a proposal: msp.SerializedIdentity{mspid, id_bytes = PEM certificate}."""
    return _length_delimited(_MSP_ID_FIELD, msp_id.encode()) + _length_delimited(
        _ID_BYTES_FIELD, bytes(certificate_pem)
    )


def read_serialized_identity(data: bytes) -> tuple[str, bytes]:
    """(mspid, id_bytes) of a serialized msp.SerializedIdentity; unknown fields are skipped as protobuf does."""
    fields: dict[int, bytes] = {}
    position = 0
    while position < len(data):
        tag, position = _read_varint(data, position)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == _VARINT:
            _, position = _read_varint(data, position)
        elif wire_type == _FIXED64:
            position += 8
        elif wire_type == _FIXED32:
            position += 4
        elif wire_type == _LENGTH_DELIMITED:
            length, position = _read_varint(data, position)
            fields[number] = data[position : position + length]
            position += length
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
        if position > len(data):
            raise ValueError("truncated message")
    try:
        return fields.get(_MSP_ID_FIELD, b"").decode("utf-8"), fields.get(_ID_BYTES_FIELD, b"")
    except UnicodeDecodeError:
        raise ValueError("mspid is not UTF-8") from None


def _length_delimited(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(len(value)) + value


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError("malformed varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


class ClientIdentity:
    """The transaction creator, after fabric-chaincode-go's cid package."""

    def __init__(self, msp_id: str, certificate: x509.Certificate):
        self.msp_id = msp_id
        self.certificate = certificate

    @classmethod
    def from_creator(cls, creator: bytes) -> "ClientIdentity":
        """Reads the serialized identity a proposal's SignatureHeader carries."""
        try:
            msp_id, id_bytes = read_serialized_identity(creator)
        except ValueError as error:
            raise IdentityError(f"failed to unmarshal transaction invoker's identity: {error}") from None
        try:
            certificate = x509.load_pem_x509_certificate(id_bytes)
        except ValueError as error:
            raise IdentityError(f"identity bytes are not an X.509 PEM certificate: {error}") from None
        return cls(msp_id, certificate)

    @property
    def id(self) -> str:
        """ "x509::<subject DN>::<issuer DN>", DNs in RFC 4514 order; unchanged when the certificate is renewed.
        (Go's cid.GetID returns the base64 of this string.)"""
        subject = self.certificate.subject.rfc4514_string(_GO_DN_NAMES)
        issuer = self.certificate.issuer.rfc4514_string(_GO_DN_NAMES)
        return f"x509::{subject}::{issuer}"

    @cached_property
    def attributes(self) -> dict[str, str]:
        """The certificate's Fabric attributes; empty when it has none."""
        try:
            extension = self.certificate.extensions.get_extension_for_oid(ATTRIBUTES_OID)
        except x509.ExtensionNotFound:
            return {}
        try:
            attrs = json.loads(extension.value.public_bytes())["attrs"]
        except (ValueError, KeyError, TypeError) as error:
            raise IdentityError(
                f"failed to get attributes from the transaction invoker's certificate: "
                f"malformed attribute extension ({error})"
            ) from None
        # Go's attrmgr reads them into a map[string]string: anything else is malformed.
        if not isinstance(attrs, dict) or not all(isinstance(value, str) for value in attrs.values()):
            raise IdentityError(
                "failed to get attributes from the transaction invoker's certificate: "
                '"attrs" must map names to strings'
            )
        return attrs

    def get_attribute_value(self, name: str) -> str | None:
        return self.attributes.get(name)

    def assert_attribute_value(self, name: str, value: str) -> None:
        """Raises IdentityError unless the attribute is present with exactly this value."""
        actual = self.get_attribute_value(name)
        if actual is None:
            raise IdentityError(f"attribute '{name}' was not found")
        if actual != value:
            raise IdentityError(f"attribute '{name}' equals '{actual}', not '{value}'")

    def __repr__(self) -> str:
        return f"ClientIdentity(msp_id={self.msp_id!r}, id={self.id!r})"
