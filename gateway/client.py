"""The Fabric Gateway client: connect, get a network and a contract, evaluate and submit transactions, read events.

After hyperledger/fabric-gateway's pkg/client: `connect(identity, signer=..., channel=...)` →
`gateway.get_network("grid")` → `network.get_contract("dr")` → `contract.submit("Declare", ...)`. A simple call
is built from the detailed ones (`new_proposal` → `endorse` → `submit` → `status`), which stay public for
callers that need a stage on its own. Every stage raises its own error from gateway.errors, carrying the
transaction id and what each peer said.
"""

import hashlib
import os
import re
import secrets
import threading
import weakref
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.google.rpc import status_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2
from google.protobuf import timestamp_pb2
from google.protobuf.message import DecodeError

from gateway.errors import CommitError, CommitStatusError, EndorseError, GatewayError, SubmitError
from gateway.results import ChaincodeEvent, CommitStatus, as_bytes

# fabric-gateway's default deadlines, in seconds.
DEFAULT_EVALUATE_TIMEOUT = 5.0
DEFAULT_ENDORSE_TIMEOUT = 15.0
DEFAULT_SUBMIT_TIMEOUT = 5.0
DEFAULT_COMMIT_STATUS_TIMEOUT = 60.0

# Fabric's own gRPC limit; a gate's order book or a block of readings can outgrow gRPC's 4 MiB default.
MAX_MESSAGE_BYTES = 100 * 1024 * 1024

NONCE_BYTES = 24

# Where a gRPC status carries its google.rpc.Status, and with it the gateway's ErrorDetail per peer.
STATUS_DETAILS_KEY = "grpc-status-details-bin"
# How the gateway reports a chaincode's own error response (fabric internal/pkg/gateway responseStatus).
CHAINCODE_RESPONSE = re.compile(r"chaincode response (\d+), (.*)", re.DOTALL)

_channels: dict[tuple[str, bytes, str | None], grpc.Channel] = {}
_channels_lock = threading.Lock()


def grpc_channel_for(
    address: str, tls_root_cert: bytes | str | os.PathLike, server_name_override: str | None = None
) -> grpc.Channel:
    """The process's one TLS channel to the peer at `address` ("host:port"), opened on first use and shared.

    `tls_root_cert` is the PEM of the CA that issued the peer's TLS certificate, as bytes or a path to the
    file; `server_name_override` is the host name in that certificate when `address` names the peer
    differently (e.g. "peer0.tso.grid.local" when dialling "127.0.0.1:7051").
    """
    pem = tls_root_cert if isinstance(tls_root_cert, bytes) else Path(tls_root_cert).read_bytes()
    key = (address, pem, server_name_override)
    with _channels_lock:
        channel = _channels.get(key)
        if channel is None:
            options = [
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ]
            if server_name_override:
                options.append(("grpc.ssl_target_name_override", server_name_override))
            channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=pem), options)
            _channels[key] = channel
        return channel


@dataclass(frozen=True)
class Timeouts:
    """Deadlines in seconds for each gateway call."""

    evaluate: float = DEFAULT_EVALUATE_TIMEOUT
    endorse: float = DEFAULT_ENDORSE_TIMEOUT
    submit: float = DEFAULT_SUBMIT_TIMEOUT
    commit_status: float = DEFAULT_COMMIT_STATUS_TIMEOUT


def connect(
    identity=None,
    *,
    signer=None,
    channel: grpc.Channel | None = None,
    evaluate_timeout: float = DEFAULT_EVALUATE_TIMEOUT,
    endorse_timeout: float = DEFAULT_ENDORSE_TIMEOUT,
    submit_timeout: float = DEFAULT_SUBMIT_TIMEOUT,
    commit_status_timeout: float = DEFAULT_COMMIT_STATUS_TIMEOUT,
) -> "Gateway":
    """A gateway through the peer at the other end of `channel`, acting as `identity` and signing with `signer`.

    identity: an X509Identity (msp_id, serialize()); signer: anything with sign(message) -> DER signature,
    e.g. a Signer; channel: a grpc channel, normally grpc_channel_for(address, tls_root_cert). The timeouts
    are the default deadline of each call; the detailed calls take their own `timeout=`.
    """
    problems = []
    if identity is None:
        problems.append("an identity (X509Identity(msp_id, certificate_pem), or from identity_from_msp_dir)")
    elif not (getattr(identity, "msp_id", None) and callable(getattr(identity, "serialize", None))):
        problems.append(f"an identity with msp_id and serialize(), not {identity!r}")
    if signer is None:
        problems.append("signer= (Signer(private_key_pem), or from identity_from_msp_dir)")
    elif not callable(getattr(signer, "sign", None)):
        problems.append(f"signer= with a sign(message) method, not {signer!r}")
    if channel is None:
        problems.append("channel= (grpc_channel_for(address, tls_root_cert))")
    elif not isinstance(channel, grpc.Channel):
        problems.append(f"channel= a grpc.Channel, not {type(channel).__name__}")
    for name, value in (
        ("evaluate_timeout", evaluate_timeout),
        ("endorse_timeout", endorse_timeout),
        ("submit_timeout", submit_timeout),
        ("commit_status_timeout", commit_status_timeout),
    ):
        if not value > 0:
            problems.append(f"{name} > 0 seconds, not {value!r}")
    if problems:
        raise TypeError("connect() needs " + "; ".join(problems))
    timeouts = Timeouts(evaluate_timeout, endorse_timeout, submit_timeout, commit_status_timeout)
    return Gateway(identity, signer, gateway_pb2_grpc.GatewayStub(channel), timeouts)


class Gateway:
    """A connection to the Fabric Gateway of one peer, as one identity. Closing it ends its event streams."""

    def __init__(self, identity, signer, stub: gateway_pb2_grpc.GatewayStub, timeouts: Timeouts):
        self.identity = identity
        self.signer = signer
        self.stub = stub
        self.timeouts = timeouts
        self._event_streams: weakref.WeakSet[ChaincodeEvents] = weakref.WeakSet()

    def get_network(self, name: str) -> "Network":
        """The channel `name`, e.g. "grid"."""
        return Network(self, name)

    def close(self) -> None:
        """Ends the event streams opened through this gateway; the shared gRPC channel stays open."""
        for stream in list(self._event_streams):
            stream.close()

    def __enter__(self) -> "Gateway":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class Network:
    """One channel as seen through a gateway."""

    def __init__(self, gateway: Gateway, name: str):
        self.gateway = gateway
        self.name = name

    def get_contract(self, chaincode_name: str, contract_name: str | None = None) -> "Contract":
        """The chaincode `chaincode_name`, or one named contract inside it (functions called "contract:name")."""
        return Contract(self, chaincode_name, contract_name)

    def get_chaincode_events(
        self, chaincode_name: str, start_block: int | None = None, after_transaction_id: str | None = None
    ) -> "ChaincodeEvents":
        """Events emitted by `chaincode_name`'s committed transactions, in ledger order, until closed.

        Without `start_block` the events of blocks committed from now on; with it, from that block on. To
        resume from a checkpoint (the block_number and transaction_id of the last event processed), pass both:
        events of that block up to and including that transaction are skipped.
        """
        request = gateway_pb2.ChaincodeEventsRequest(
            channel_id=self.name,
            chaincode_id=chaincode_name,
            identity=self.gateway.identity.serialize(),
            after_transaction_id=after_transaction_id or "",
        )
        if start_block is None:
            request.start_position.next_commit.SetInParent()
        else:
            request.start_position.specified.number = start_block
        request_bytes = request.SerializeToString()
        signed = gateway_pb2.SignedChaincodeEventsRequest(
            request=request_bytes, signature=self.gateway.signer.sign(request_bytes)
        )
        events = ChaincodeEvents(self.gateway.stub.ChaincodeEvents(signed))
        self.gateway._event_streams.add(events)
        return events


class Contract:
    """A chaincode (or one contract in it) on a channel: evaluate queries, submit transactions."""

    def __init__(self, network: Network, chaincode_name: str, contract_name: str | None = None):
        self.network = network
        self.chaincode_name = chaincode_name
        self.contract_name = contract_name

    def new_proposal(
        self,
        name: str,
        *args: str | bytes,
        transient: dict[str, str | bytes] | None = None,
        endorsing_organizations: list[str] | None = None,
    ) -> "Proposal":
        """A signed proposal to call transaction function `name` with `args`, to evaluate or endorse.

        `transient` data reaches the chaincode but never the ledger (private data goes here).
        `endorsing_organizations` (MSP ids) are the only organisations the proposal is sent to: with
        transient data, name the members of the collection written so nobody else sees the data.
        """
        function = f"{self.contract_name}:{name}" if self.contract_name else name
        return Proposal(
            self.network.gateway,
            self.network.name,
            self.chaincode_name,
            [function.encode(), *(as_bytes(arg, f"argument {i}") for i, arg in enumerate(args, 1))],
            {key: as_bytes(value, f"transient {key!r}") for key, value in (transient or {}).items()},
            list(endorsing_organizations or ()),
        )

    def evaluate(
        self,
        name: str,
        *args: str | bytes,
        transient: dict[str, str | bytes] | None = None,
        endorsing_organizations: list[str] | None = None,
    ) -> bytes:
        """The result of running `name` on one peer, recording nothing: `new_proposal(...).evaluate()`.

        Here `endorsing_organizations` chooses whose peer runs it. Raises GatewayError with the chaincode's
        message when the chaincode refuses.
        """
        return self.new_proposal(
            name, *args, transient=transient, endorsing_organizations=endorsing_organizations
        ).evaluate()

    def submit(
        self,
        name: str,
        *args: str | bytes,
        transient: dict[str, str | bytes] | None = None,
        endorsing_organizations: list[str] | None = None,
    ) -> bytes:
        """Runs `name` as a transaction and returns its result once it has committed.

        That is `new_proposal(...).endorse().submit()` followed by waiting for the commit status. Raises
        EndorseError (the chaincode's message when it refuses), SubmitError, CommitStatusError, or CommitError
        when the transaction was ordered but did not commit as valid.
        """
        submitted = (
            self.new_proposal(name, *args, transient=transient, endorsing_organizations=endorsing_organizations)
            .endorse()
            .submit()
        )
        status = submitted.status()
        if not status.successful:
            raise CommitError(status.transaction_id, status.code)
        return submitted.result


def transaction_id(nonce: bytes, creator: bytes) -> str:
    """Fabric's transaction id: hex(SHA-256(nonce ‖ serialized creator)); peers recompute and check it."""
    return hashlib.sha256(nonce + creator).hexdigest()


class Proposal:
    """A transaction proposal, signed, not yet sent: evaluate it (a query) or endorse it (a transaction)."""

    def __init__(
        self,
        gateway: Gateway,
        channel_name: str,
        chaincode_name: str,
        args: list[bytes],
        transient: dict[str, bytes],
        endorsing_organizations: list[str],
    ):
        self.gateway = gateway
        self.channel_name = channel_name
        self.endorsing_organizations = endorsing_organizations
        creator = gateway.identity.serialize()
        nonce = secrets.token_bytes(NONCE_BYTES)
        self.transaction_id = transaction_id(nonce, creator)
        proposal_bytes = _proposal(
            channel_name, chaincode_name, args, transient, creator, nonce, self.transaction_id
        ).SerializeToString()
        self.signed_proposal = proposal_pb2.SignedProposal(
            proposal_bytes=proposal_bytes, signature=gateway.signer.sign(proposal_bytes)
        )

    def evaluate(self, timeout: float | None = None) -> bytes:
        """The chaincode's result from one peer; nothing is recorded. Raises GatewayError."""
        request = gateway_pb2.EvaluateRequest(
            transaction_id=self.transaction_id,
            channel_id=self.channel_name,
            proposed_transaction=self.signed_proposal,
            target_organizations=self.endorsing_organizations,
        )
        try:
            response = self.gateway.stub.Evaluate(request, timeout=timeout or self.gateway.timeouts.evaluate)
        except grpc.RpcError as error:
            raise gateway_error(error, "evaluate") from error
        return response.result.payload

    def endorse(self, timeout: float | None = None) -> "Transaction":
        """Endorsed by enough peers to satisfy the endorsement policy, ready to submit. Raises EndorseError."""
        request = gateway_pb2.EndorseRequest(
            transaction_id=self.transaction_id,
            channel_id=self.channel_name,
            proposed_transaction=self.signed_proposal,
            endorsing_organizations=self.endorsing_organizations,
        )
        try:
            response = self.gateway.stub.Endorse(request, timeout=timeout or self.gateway.timeouts.endorse)
        except grpc.RpcError as error:
            raise gateway_error(error, "endorse", EndorseError, self.transaction_id) from error
        envelope = response.prepared_transaction
        try:
            result = result_from_envelope(envelope)
        except (ValueError, DecodeError) as error:
            raise EndorseError(
                f"transaction {self.transaction_id} was endorsed but the gateway's prepared "
                f"transaction has no readable result: {error}",
                self.transaction_id,
            ) from error
        return Transaction(self.gateway, self.channel_name, self.transaction_id, envelope, result)


class Transaction:
    """An endorsed transaction: its result is known, it is not yet ordered."""

    def __init__(
        self, gateway: Gateway, channel_name: str, transaction_id: str, envelope: common_pb2.Envelope, result: bytes
    ):
        self.gateway = gateway
        self.channel_name = channel_name
        self.transaction_id = transaction_id
        self.envelope = envelope
        self.result = result

    def submit(self, timeout: float | None = None) -> "SubmittedTransaction":
        """Signs the transaction and hands it to the ordering service. Raises SubmitError."""
        self.envelope.signature = self.gateway.signer.sign(self.envelope.payload)
        request = gateway_pb2.SubmitRequest(
            transaction_id=self.transaction_id, channel_id=self.channel_name, prepared_transaction=self.envelope
        )
        try:
            self.gateway.stub.Submit(request, timeout=timeout or self.gateway.timeouts.submit)
        except grpc.RpcError as error:
            raise gateway_error(error, "submit", SubmitError, self.transaction_id) from error
        return SubmittedTransaction(self.gateway, self.channel_name, self.transaction_id, self.result)


class SubmittedTransaction:
    """A transaction the ordering service accepted; `status()` waits for it to commit."""

    def __init__(self, gateway: Gateway, channel_name: str, transaction_id: str, result: bytes):
        self.gateway = gateway
        self.channel_name = channel_name
        self.transaction_id = transaction_id
        self.result = result

    def status(self, timeout: float | None = None) -> CommitStatus:
        """Blocks until the gateway's peer has committed the transaction. Raises CommitStatusError."""
        request_bytes = gateway_pb2.CommitStatusRequest(
            transaction_id=self.transaction_id, channel_id=self.channel_name, identity=self.gateway.identity.serialize()
        ).SerializeToString()
        signed = gateway_pb2.SignedCommitStatusRequest(
            request=request_bytes, signature=self.gateway.signer.sign(request_bytes)
        )
        try:
            response = self.gateway.stub.CommitStatus(signed, timeout=timeout or self.gateway.timeouts.commit_status)
        except grpc.RpcError as error:
            raise gateway_error(error, "commit status", CommitStatusError, self.transaction_id) from error
        return CommitStatus(self.transaction_id, validation_code_name(response.result), response.block_number)


class ChaincodeEvents:
    """An open stream of chaincode events: iterate it; close it (or use `with`) to stop."""

    def __init__(self, responses):
        self._responses = responses  # a grpc response-streaming call: an iterator that can be cancelled
        self._pending: deque[ChaincodeEvent] = deque()
        self._closed = False

    def __iter__(self) -> "ChaincodeEvents":
        return self

    def __next__(self) -> ChaincodeEvent:
        while not self._pending:
            if self._closed:
                raise StopIteration
            try:
                response = next(self._responses)
            except grpc.RpcError as error:
                if self._closed:  # our own cancel() ending the stream
                    raise StopIteration from None
                raise gateway_error(error, "chaincode events") from error
            self._pending.extend(
                ChaincodeEvent(response.block_number, event.tx_id, event.chaincode_id, event.event_name, event.payload)
                for event in response.events
            )
        return self._pending.popleft()

    def close(self) -> None:
        """Stops the stream; events already received but not yet taken are dropped."""
        self._closed = True
        self._pending.clear()
        self._responses.cancel()

    def __enter__(self) -> "ChaincodeEvents":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _proposal(
    channel_name: str,
    chaincode_name: str,
    args: list[bytes],
    transient: dict[str, bytes],
    creator: bytes,
    nonce: bytes,
    tx_id: str,
) -> proposal_pb2.Proposal:
    """The unsigned proposal, as fabric's protoutil.CreateChaincodeProposalWithTransient builds it."""
    chaincode_id = chaincode_pb2.ChaincodeID(name=chaincode_name)
    timestamp = timestamp_pb2.Timestamp()
    timestamp.GetCurrentTime()
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.ENDORSER_TRANSACTION,
        timestamp=timestamp,
        channel_id=channel_name,
        tx_id=tx_id,
        epoch=0,
        extension=proposal_pb2.ChaincodeHeaderExtension(chaincode_id=chaincode_id).SerializeToString(),
    )
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=common_pb2.SignatureHeader(creator=creator, nonce=nonce).SerializeToString(),
    )
    invocation = chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(
            chaincode_id=chaincode_id, input=chaincode_pb2.ChaincodeInput(args=args)
        )
    )
    # The field really is spelt TransientMap in proposal.proto.
    payload = proposal_pb2.ChaincodeProposalPayload(input=invocation.SerializeToString(), TransientMap=transient)
    return proposal_pb2.Proposal(
        header=header.SerializeToString(), payload=payload.SerializeToString(deterministic=True)
    )


def result_from_envelope(envelope: common_pb2.Envelope) -> bytes:
    """The chaincode's result inside a prepared transaction (the first action's chaincode response payload)."""
    payload = common_pb2.Payload.FromString(envelope.payload)
    actions = transaction_pb2.Transaction.FromString(payload.data).actions
    if not actions:
        raise ValueError("no chaincode action in the transaction")
    action_payload = transaction_pb2.ChaincodeActionPayload.FromString(actions[0].payload)
    response_payload = proposal_response_pb2.ProposalResponsePayload.FromString(
        action_payload.action.proposal_response_payload
    )
    return proposal_pb2.ChaincodeAction.FromString(response_payload.extension).response.payload


def validation_code_name(code: int) -> str:
    """The peer.TxValidationCode name of `code`, e.g. "MVCC_READ_CONFLICT"."""
    try:
        return transaction_pb2.TxValidationCode.Name(code)
    except ValueError:
        return f"TxValidationCode {code}"


def error_details(error: grpc.RpcError) -> tuple[tuple[str, str, str], ...]:
    """(address, msp_id, message) of each peer or orderer the gateway reported on, from the status details."""
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY:
            details = []
            for packed in status_pb2.Status.FromString(value).details:
                detail = gateway_pb2.ErrorDetail()
                if packed.Unpack(detail):
                    details.append((detail.address, detail.msp_id, detail.message))
            return tuple(details)
    return ()


def gateway_error(
    error: grpc.RpcError, stage: str, error_class: type[GatewayError] = GatewayError, tx_id: str | None = None
) -> GatewayError:
    """The gateway.errors exception for a failed call at `stage`.

    When a chaincode refused ("chaincode response 500, <message>"), the message is the chaincode's own;
    otherwise it names the stage, the gRPC status and what each peer said.
    """
    details = error_details(error)
    status_message = error.details() or ""
    for text in [message for _, _, message in details] + [status_message]:
        refusal = CHAINCODE_RESPONSE.search(text)
        if refusal:
            message = refusal.group(2)
            break
    else:
        message = f"{stage} failed with {error.code().name}: {status_message}"
        if details:
            message += " (" + "; ".join(f"{msp_id} at {address}: {said}" for address, msp_id, said in details) + ")"
    refused = refusal is not None
    if tx_id is None:
        return error_class(message, details, refused=refused)
    return error_class(message, tx_id, details, refused=refused)
