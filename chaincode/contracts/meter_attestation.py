"""Smart-meter attestation: what a meter signs over its readings, and how an endorser checks that signature and
the meter's certificate against the meter operator's CA, so that an RA relays its consumers' readings but cannot
forge or alter them.

    statement = reading_statement("1", "C1", [("2021-01-14T00:00", 412), ...])   # what the meter signs
    statement = history_statement("C1", [("2021-01-13", [120, 118, ...]), ...])  # its 30-minute history
    authority = MeterAuthority(operator_ca_pems)                                # the operator's root certificates
    authority.check_attestation("C1", statement, certificate_pem, signature, at=tx_time)

The statement is canonical JSON of the command, the consumer and its (minute, Wh) pairs in minute order, so the
client and every endorser build the same bytes from the same readings. Signatures are ECDSA P-256 over SHA-256,
DER-encoded, as Fabric identities sign.

Where the operator's CA comes from on a peer: the channel's genesis block in the run directory this chaincode
server serves (operator_authority_from_channel_block), i.e. the root certificates of the operator's MSP exactly as
the channel configuration holds them, which is what every peer checks a TSOMSP creator against. A CA from the
operator's MSP directory would be one organisation's copy of that; the channel configuration is the one all agree on.
"""

import base64
import binascii
import hashlib
import json
import sys
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from chaincode.contracts.common import Refusal, canonical_json
from chaincode.shim.identity import ATTRIBUTES_OID
from consortium.topology import Topology

METER_ROLE = "meter"


def reading_statement(command_id: str, consumer: str, readings: Iterable[tuple[str, int]]) -> bytes:
    """What a meter signs for a batch of its readings: canonical JSON {"command", "consumer", "readings":
    [[minute, wh], ...] in minute order}."""
    ordered = sorted([str(minute), wh] for minute, wh in readings)
    return canonical_json({"command": command_id, "consumer": consumer, "readings": ordered})


def history_statement(consumer: str, days: Iterable[tuple[str, list[int]]]) -> bytes:
    """What a meter signs for its 30-minute history (the values Japan's smart meters record): canonical JSON
    {"consumer", "history": [[day "YYYY-MM-DD", [48 Wh, from 00:00 JST]], ...] in day order}."""
    ordered = sorted([str(day), list(values)] for day, values in days)
    return canonical_json({"consumer": consumer, "history": ordered})


def meter_attributes(certificate: x509.Certificate) -> dict:
    """The Fabric attributes of a certificate ({} without them; a malformed extension is refused)."""
    try:
        extension = certificate.extensions.get_extension_for_oid(ATTRIBUTES_OID)
    except x509.ExtensionNotFound:
        return {}
    try:
        attributes = json.loads(extension.value.public_bytes())["attrs"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise Refusal("the meter certificate's attribute extension is malformed") from None
    return attributes if isinstance(attributes, dict) else {}


class MeterAuthority:
    """The meter operator's CA certificates, and the checks of a meter's certificate and signature against them.

    A checked certificate is remembered by its bytes' hash (the check is a pure function of certificate and CA),
    so a meter's later batches cost one signature verification, not two."""

    def __init__(self, ca_certificates: list[x509.Certificate]):
        if not ca_certificates:
            raise ValueError("the meter operator's CA certificate is needed to check meters")
        self.ca_certificates = list(ca_certificates)
        self._checked: dict[bytes, tuple[x509.Certificate, str]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_pems(cls, pems: Iterable[bytes]) -> "MeterAuthority":
        return cls([x509.load_pem_x509_certificate(pem) for pem in pems])

    def meter_certificate(self, pem: bytes, at: datetime | None) -> tuple[x509.Certificate, str]:
        """(the certificate, the consumer it names) of a meter certificate the operator's CA issued and that is
        valid at `at`; otherwise a Refusal that says what is wrong."""
        digest = hashlib.sha256(pem).digest()
        with self._lock:
            known = self._checked.get(digest)
        if known is None:
            try:
                certificate = x509.load_pem_x509_certificate(pem)
            except ValueError:
                raise Refusal("the meter certificate is not a PEM X.509 certificate") from None
            if not any(_issued_by(certificate, ca) for ca in self.ca_certificates):
                raise Refusal(
                    "the meter certificate was not issued by the meter operator's CA "
                    f"(issuer {certificate.issuer.rfc4514_string()})"
                )
            attributes = meter_attributes(certificate)
            consumer = attributes.get("consumer")
            if attributes.get("role") != METER_ROLE or not isinstance(consumer, str) or not consumer:
                raise Refusal("the certificate is not a smart meter's (it names no consumer)")
            known = (certificate, consumer)
            with self._lock:
                self._checked[digest] = known
        certificate, consumer = known
        if at is not None and not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
            raise Refusal(f"the certificate of {consumer}'s meter is not valid at {at.isoformat()}")
        return known

    def check_attestation(
        self, consumer: str, statement: bytes, certificate_pem: bytes, signature: bytes, at: datetime | None
    ) -> None:
        """Refuses unless `signature` is the signature of `consumer`'s own meter, issued by the operator, over
        `statement`."""
        certificate, named = self.meter_certificate(certificate_pem, at)
        if named != consumer:
            raise Refusal(f"the readings of {consumer} are signed by the meter of {named}, not by {consumer}'s own")
        key = certificate.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise Refusal(f"the meter certificate of {consumer} does not hold an ECDSA key")
        try:
            key.verify(signature, statement, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise Refusal(
                f"the meter signature over {consumer}'s readings does not verify: they are not what the meter signed"
            ) from None


def _issued_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(ca)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def operator_authority_from_channel_block(block: Path, msp_id: str) -> MeterAuthority:
    """The root (and intermediate) certificates of `msp_id` as the channel configuration in `block` (a config
    block, e.g. the genesis block) holds them. Needs Fabric's generated protobufs: a peer's chaincode server has
    them."""
    from fabric_protos.common import common_pb2, configtx_pb2
    from fabric_protos.msp import msp_config_pb2

    envelope = common_pb2.Envelope.FromString(common_pb2.Block.FromString(block.read_bytes()).data.data[0])
    config = configtx_pb2.ConfigEnvelope.FromString(common_pb2.Payload.FromString(envelope.payload).data).config
    organisations = config.channel_group.groups["Application"].groups
    if msp_id not in organisations:
        raise ValueError(f"{block}: the channel has no organisation {msp_id}")
    msp = msp_config_pb2.MSPConfig.FromString(organisations[msp_id].values["MSP"].value)
    fabric = msp_config_pb2.FabricMSPConfig.FromString(msp.config)
    return MeterAuthority.from_pems(list(fabric.root_certs) + list(fabric.intermediate_certs))


def channel_block_of_this_server(topology: Topology, argv: list[str] | None = None) -> Path | None:
    """The channel's genesis block of the run directory whose chaincode server this process is: the server is
    started with its TLS certificate at <run>/chaincode/<org>/tls/server.crt (network.chaincode), and the block
    is <run>/channel/<channel>.block. None when this process is no such server (an in-process ledger)."""
    arguments = list(sys.argv if argv is None else argv)
    if "--tls-cert" not in arguments[:-1]:
        return None
    tls_cert = Path(arguments[arguments.index("--tls-cert") + 1]).resolve()
    block = tls_cert.parents[3] / "channel" / f"{topology.channel}.block"
    return block if block.is_file() else None


class HoldsMeterAuthority(Protocol):
    """A contract that checks meter signatures: its topology, and the operator's CA once known (None: not yet)."""

    topology: Topology
    meter_authority: MeterAuthority | None


def meter_authority_of_endorser(contract: HoldsMeterAuthority) -> MeterAuthority:
    """`contract.meter_authority`, read once from this chaincode server's channel block when not given; refused
    where this endorser has no such block (an in-process ledger not told the CA)."""
    if contract.meter_authority is None:
        block = channel_block_of_this_server(contract.topology)
        if block is None:
            raise Refusal("this endorser does not know the meter operator's CA, so it cannot check meter signatures")
        contract.meter_authority = operator_authority_from_channel_block(block, contract.topology.meter_operator_msp_id)
    return contract.meter_authority


def check_meter_signatures(
    signatures: dict,
    statements: dict[str, bytes],
    what: str,
    authority: Callable[[], MeterAuthority],
    at: datetime,
) -> None:
    """Refuses unless each consumer of `statements` (consumer: what its meter signs) has its own meter's signature
    over exactly that in `signatures` (transient "meter_signatures": {consumer: {"certificate": PEM, "signature":
    base64 DER}}), and no other consumer has one. `what` is what is signed ("readings", "history"); `authority` is
    asked for only once the batch is signed at all."""
    unsigned = sorted(set(statements) - set(signatures))
    if unsigned:
        carry = "carry" if what.endswith("s") else "carries"
        raise Refusal(
            f"the {what} of {', '.join(unsigned[:5])} {carry} no meter signature; an RA relays {what} signed "
            f"by each consumer's meter"
        )
    extra = sorted(set(signatures) - set(statements))
    if extra:
        raise Refusal(f"meter signatures for consumers without {what} in the batch: {', '.join(extra[:5])}")
    operator = authority()
    for consumer in sorted(statements):
        certificate, signature = _attestation(consumer, signatures[consumer])
        operator.check_attestation(consumer, statements[consumer], certificate, signature, at)


def _attestation(consumer: str, entry) -> tuple[bytes, bytes]:
    """(certificate PEM, signature DER) of one consumer's entry in transient "meter_signatures"."""
    if not isinstance(entry, dict) or set(entry) != {"certificate", "signature"}:
        raise Refusal(f"the meter signature of {consumer} must be an object with certificate and signature")
    certificate, signature = entry["certificate"], entry["signature"]
    if not isinstance(certificate, str) or not isinstance(signature, str):
        raise Refusal(f"the meter signature of {consumer}: certificate (PEM) and signature (base64) are text")
    try:
        return certificate.encode(), base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise Refusal(f"the meter signature of {consumer} is not base64") from None
