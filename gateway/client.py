"""The Fabric Gateway client: gateway.api's interface over a peer's Gateway service, signed by the caller.

After hyperledger/fabric-gateway's pkg/client: `connect(identity, signer=..., channel=...)` →
`gateway.get_network("grid")` → `network.get_contract("gridledger", "dr")` → `contract.submit("Declare", ...)`.
Every stage raises its own error from gateway.errors, carrying the transaction id and what each peer said.
"""

import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.peer import proposal_pb2
from google.protobuf.message import DecodeError
from google.rpc import status_pb2

from gateway import api
from gateway.api import CHAINCODE_RESPONSE, ChaincodeEvent, CommitStatus
from gateway.errors import CommitStatusError, EndorseError, GatewayError, SubmitError, TransactionError
from gateway.protoutil import NONCE_BYTES, chaincode_action, chaincode_proposal, transaction_id, validation_code_name

# fabric-gateway's default deadlines, in seconds.
DEFAULT_EVALUATE_TIMEOUT = 5.0
DEFAULT_ENDORSE_TIMEOUT = 15.0
DEFAULT_SUBMIT_TIMEOUT = 5.0
DEFAULT_COMMIT_STATUS_TIMEOUT = 60.0

# Fabric's own gRPC limit; a gate's order book or a block of readings can outgrow gRPC's 4 MiB default.
MAX_MESSAGE_BYTES = 100 * 1024 * 1024

# Where a gRPC status carries its google.rpc.Status, and with it the gateway's ErrorDetail per peer.
STATUS_DETAILS_KEY = "grpc-status-details-bin"

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
            options: list[tuple[str, int | str]] = [
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


class FabricIdentity(Protocol):
    """What the client needs of an identity: its organisation and its msp.SerializedIdentity (an X509Identity)."""

    @property
    def msp_id(self) -> str: ...

    def serialize(self) -> bytes: ...


class Signing(Protocol):
    """What signs for an identity: a DER ECDSA signature over SHA-256 of the message (a Signer)."""

    def sign(self, message: bytes) -> bytes: ...


def connect(
    identity: FabricIdentity | None = None,
    *,
    signer: Signing | None = None,
    channel: grpc.Channel | None = None,
    evaluate_timeout: float = DEFAULT_EVALUATE_TIMEOUT,
    endorse_timeout: float = DEFAULT_ENDORSE_TIMEOUT,
    submit_timeout: float = DEFAULT_SUBMIT_TIMEOUT,
    commit_status_timeout: float = DEFAULT_COMMIT_STATUS_TIMEOUT,
) -> "FabricGateway":
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
    if problems or identity is None or signer is None:
        raise TypeError("connect() needs " + "; ".join(problems))
    timeouts = Timeouts(evaluate_timeout, endorse_timeout, submit_timeout, commit_status_timeout)
    return FabricGateway(identity, signer, gateway_pb2_grpc.GatewayStub(channel), timeouts)


class FabricContract(api.Contract):
    network: "FabricNetwork"

    def _new_proposal(
        self, args: list[bytes], transient: dict[str, bytes], endorsing_organizations: list[str]
    ) -> "FabricProposal":
        return FabricProposal(
            self.network.gateway, self.network.name, self.chaincode_name, args, transient, endorsing_organizations
        )


class FabricNetwork(api.Network):
    gateway: "FabricGateway"
    contract_type = FabricContract

    def _open_chaincode_events(
        self, chaincode_name: str, start_block: int | None, after_transaction_id: str | None
    ) -> "FabricChaincodeEvents":
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
        return FabricChaincodeEvents(self.gateway.stub.ChaincodeEvents(signed))


class FabricGateway(api.Gateway):
    """A connection to the Fabric Gateway of one peer, as one identity. Closing it ends its event streams; the
    shared gRPC channel stays open."""

    identity: FabricIdentity
    network_type = FabricNetwork

    def __init__(
        self, identity: FabricIdentity, signer: Signing, stub: gateway_pb2_grpc.GatewayStub, timeouts: Timeouts
    ):
        super().__init__(identity)
        self.signer = signer
        self.stub = stub
        self.timeouts = timeouts

    def call(
        self,
        stage: str,
        rpc: Callable[..., Any],
        request: Any,
        timeout: float,
        error_class: type[TransactionError] | None = None,
        tx_id: str | None = None,
    ) -> Any:
        """The response of the unary call `rpc(request)` within `timeout` seconds; a failure raises what
        gateway_error makes of it."""
        try:
            return rpc(request, timeout=timeout)
        except grpc.RpcError as error:
            raise gateway_error(error, stage, error_class, tx_id) from error


class FabricProposal(api.Proposal):
    """A signed proposal; `signed_proposal` is what the peers receive."""

    def __init__(
        self,
        gateway: FabricGateway,
        channel_name: str,
        chaincode_name: str,
        args: list[bytes],
        transient: dict[str, bytes],
        endorsing_organizations: list[str],
    ):
        creator = gateway.identity.serialize()
        nonce = secrets.token_bytes(NONCE_BYTES)
        super().__init__(transaction_id(nonce, creator), endorsing_organizations)
        self.gateway = gateway
        self.channel_name = channel_name
        proposal_bytes = chaincode_proposal(
            channel_name, chaincode_name, args, transient, creator, nonce
        ).SerializeToString()
        self.signed_proposal = proposal_pb2.SignedProposal(
            proposal_bytes=proposal_bytes, signature=gateway.signer.sign(proposal_bytes)
        )

    def _request(self, request_type: Any, **organisations: list[str]) -> Any:
        """An Evaluate or Endorse request for this proposal; they differ in how they name the organisations."""
        return request_type(
            transaction_id=self.transaction_id,
            channel_id=self.channel_name,
            proposed_transaction=self.signed_proposal,
            **organisations,
        )

    def evaluate(self, timeout: float | None = None) -> bytes:
        request = self._request(gateway_pb2.EvaluateRequest, target_organizations=self.endorsing_organizations)
        gateway = self.gateway
        response = gateway.call("evaluate", gateway.stub.Evaluate, request, timeout or gateway.timeouts.evaluate)
        return response.result.payload

    def endorse(self, timeout: float | None = None) -> "FabricTransaction":
        request = self._request(gateway_pb2.EndorseRequest, endorsing_organizations=self.endorsing_organizations)
        gateway = self.gateway
        envelope = gateway.call(
            "endorse",
            gateway.stub.Endorse,
            request,
            timeout or gateway.timeouts.endorse,
            EndorseError,
            self.transaction_id,
        ).prepared_transaction
        try:
            result = result_from_envelope(envelope)
        except (ValueError, DecodeError) as error:
            raise EndorseError(
                f"transaction {self.transaction_id} was endorsed but the gateway's prepared "
                f"transaction has no readable result: {error}",
                self.transaction_id,
            ) from error
        return FabricTransaction(gateway, self.channel_name, self.transaction_id, envelope, result)


class FabricTransaction(api.Transaction):
    """An endorsed transaction; `envelope` is the prepared transaction the gateway assembled, to sign and submit."""

    def __init__(
        self,
        gateway: FabricGateway,
        channel_name: str,
        transaction_id: str,
        envelope: common_pb2.Envelope,
        result: bytes,
    ):
        super().__init__(transaction_id, result)
        self.gateway = gateway
        self.channel_name = channel_name
        self.envelope = envelope

    def submit(self, timeout: float | None = None) -> "FabricSubmittedTransaction":
        """Signs the transaction and hands it to the ordering service. Raises SubmitError."""
        gateway = self.gateway
        self.envelope.signature = gateway.signer.sign(self.envelope.payload)
        request = gateway_pb2.SubmitRequest(
            transaction_id=self.transaction_id, channel_id=self.channel_name, prepared_transaction=self.envelope
        )
        gateway.call(
            "submit", gateway.stub.Submit, request, timeout or gateway.timeouts.submit, SubmitError, self.transaction_id
        )
        return FabricSubmittedTransaction(gateway, self.channel_name, self.transaction_id, self.result)


class FabricSubmittedTransaction(api.SubmittedTransaction):
    def __init__(self, gateway: FabricGateway, channel_name: str, transaction_id: str, result: bytes):
        super().__init__(transaction_id, result)
        self.gateway = gateway
        self.channel_name = channel_name

    def status(self, timeout: float | None = None) -> CommitStatus:
        gateway = self.gateway
        request_bytes = gateway_pb2.CommitStatusRequest(
            transaction_id=self.transaction_id, channel_id=self.channel_name, identity=gateway.identity.serialize()
        ).SerializeToString()
        signed = gateway_pb2.SignedCommitStatusRequest(
            request=request_bytes, signature=gateway.signer.sign(request_bytes)
        )
        response = gateway.call(
            "commit status",
            gateway.stub.CommitStatus,
            signed,
            timeout or gateway.timeouts.commit_status,
            CommitStatusError,
            self.transaction_id,
        )
        return CommitStatus(self.transaction_id, validation_code_name(response.result), response.block_number)


class ResponseStream(Protocol):
    """A gRPC response-streaming call: an iterator of responses that can be cancelled."""

    def __next__(self) -> Any: ...

    def cancel(self) -> bool: ...


class FabricChaincodeEvents(api.ChaincodeEvents):
    """The events of a ChaincodeEvents call, one response (a block's events) at a time."""

    def __init__(self, responses: ResponseStream):
        super().__init__()
        self._responses = responses

    def _receive(self) -> list[ChaincodeEvent] | None:
        try:
            response = next(self._responses)
        except StopIteration:
            return None
        except grpc.RpcError as error:
            if self.closed:  # our own cancel() ending the stream
                return None
            raise gateway_error(error, "chaincode events") from error
        return [
            ChaincodeEvent(response.block_number, event.tx_id, event.chaincode_id, event.event_name, event.payload)
            for event in response.events
        ]

    def _stop(self) -> None:
        self._responses.cancel()


def result_from_envelope(envelope: common_pb2.Envelope) -> bytes:
    """The chaincode's result inside a prepared transaction (the first action's chaincode response payload)."""
    action = chaincode_action(common_pb2.Payload.FromString(envelope.payload))
    if action is None:
        raise ValueError("no chaincode action in the transaction")
    return action.response.payload


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
    error: grpc.RpcError,
    stage: str,
    error_class: type[TransactionError] | None = None,
    tx_id: str | None = None,
) -> GatewayError:
    """The gateway.errors exception for a failed call at `stage`: `error_class` of transaction `tx_id`, or a
    GatewayError when the call belongs to no transaction (an evaluation, an event stream).

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
    if error_class is None or tx_id is None:
        return GatewayError(message, details, refused=refused)
    return error_class(message, tx_id, details, refused=refused)
