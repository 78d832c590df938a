"""One peer's chaincode stream: registration, then transactions run concurrently, their ledger calls routed by txid.

The protocol (fabric-chaincode-go shim/handler.go is the reference): we send REGISTER with the package id; the peer
answers REGISTERED, then READY, whose payload (from Fabric v3.1) says whether it takes write batches and multi-key
reads (see chaincode.shim.peer_stub). In the ready state every TRANSACTION or INIT runs as its own task; each ledger
call it makes is a ChaincodeMessage keyed by channel id + txid, answered by RESPONSE or ERROR; the task ends with
COMPLETED carrying a peer.Response and the chaincode event, once the writes the stub held back are sent; a failed
transaction's are dropped unsent, as the peer would discard them. KEEPALIVE is echoed in any state; any other message
out of place is answered with ERROR and the stream is closed.
"""

import logging
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Executor

import grpc
from fabric_protos.peer import chaincode_event_pb2, chaincode_pb2, proposal_response_pb2
from fabric_protos.peer.chaincode_shim_pb2 import ChaincodeMessage as ShimMessage
from google.protobuf.message import DecodeError, Message

from chaincode.shim.contract import ChaincodeInterface
from chaincode.shim.errors import StubError
from chaincode.shim.peer_stub import DEFAULT_BATCH_SIZE, ChaincodeStub, PeerFeatures
from chaincode.shim.proposal import ProposalError, read_signed_proposal
from chaincode.shim.stub import TransactionContext

log = logging.getLogger(__name__)

CREATED, ESTABLISHED, READY = "created", "established", "ready"
_END_OF_STREAM = object()


class ProtocolError(Exception):
    """The peer sent a message that has no place in the conversation."""


def _type_name(message_type: int) -> str:
    return ShimMessage.Type.Name(message_type) if message_type in ShimMessage.Type.values() else str(message_type)


def _short(tx_id: str) -> str:
    return tx_id[:8]


def announced_features(ready_payload: bytes) -> PeerFeatures:
    """What a READY payload announces; an empty or unreadable one (a peer before v3.1) announces nothing, and a
    feature turned on without a size gets the Go shim's default."""
    try:
        params = chaincode_pb2.ChaincodeAdditionalParams.FromString(ready_payload)
    except DecodeError:
        log.warning("the peer's READY carries a payload that is not ChaincodeAdditionalParams; using single calls")
        return PeerFeatures()
    return PeerFeatures(
        write_batch_size=(params.max_size_write_batch or DEFAULT_BATCH_SIZE) if params.use_write_batch else 0,
        multiple_keys_size=(params.max_size_get_multiple_keys or DEFAULT_BATCH_SIZE)
        if params.use_get_multiple_keys
        else 0,
    )


class StreamHandler:
    """Speaks the chaincode protocol on one Connect stream. `serve(requests)` is the generator gRPC sends from."""

    def __init__(
        self, chaincode: ChaincodeInterface, package_id: str, executor: Executor, peer_msp_id: str | None = None
    ):
        self._chaincode = chaincode
        self._package_id = package_id
        self._executor = executor
        self._peer_msp_id = peer_msp_id
        self.state = CREATED
        self.features = PeerFeatures()  # until READY says more
        self._outbox: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._waiting: dict[tuple[str, str], queue.Queue] = {}  # (channel id, txid) → where its answer goes
        self._closed = False

    def serve(self, requests: Iterator[ShimMessage]) -> Iterator[ShimMessage]:
        """Registers, reads the peer's messages on a thread of its own, and yields what we send until closed."""
        self._send(
            ShimMessage(
                type=ShimMessage.REGISTER, payload=chaincode_pb2.ChaincodeID(name=self._package_id).SerializeToString()
            )
        )
        threading.Thread(
            target=self._read, args=(requests,), name=f"chaincode-stream-{id(self):x}", daemon=True
        ).start()
        while (message := self._outbox.get()) is not _END_OF_STREAM:
            yield message

    def close(self) -> None:
        """Ends the stream; ledger calls still waiting fail (their transactions end with an error)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            waiting, self._waiting = self._waiting, {}
        for answer in waiting.values():
            answer.put(None)
        self._outbox.put(_END_OF_STREAM)

    def call(self, channel_id: str, tx_id: str, message_type: int, payload: Message) -> bytes:
        """Sends one ledger call of a transaction and waits for the peer's answer (one call per txid at a time)."""
        key = (channel_id, tx_id)
        answer: queue.Queue = queue.Queue()  # unbounded: a late answer and close() may both arrive
        with self._lock:
            if self._closed:
                raise StubError(f"[{_short(tx_id)}] the connection to the peer is closed")
            if key in self._waiting:
                raise StubError(f"[{_short(tx_id)}] another ledger call of this transaction is still waiting")
            self._waiting[key] = answer
        try:
            self._send(
                ShimMessage(type=message_type, payload=payload.SerializeToString(), txid=tx_id, channel_id=channel_id)
            )
            reply = answer.get()
        finally:
            with self._lock:
                self._waiting.pop(key, None)
        if reply is None:
            raise StubError(
                f"[{_short(tx_id)}] the connection to the peer closed before it answered {_type_name(message_type)}"
            )
        if reply.type == ShimMessage.RESPONSE:
            return reply.payload
        if reply.type == ShimMessage.ERROR:
            raise StubError(reply.payload.decode("utf-8", errors="replace"))
        raise StubError(
            f"[{_short(tx_id)}] incorrect chaincode message {_type_name(reply.type)} received. "
            f"Expecting RESPONSE or ERROR"
        )

    def _send(self, message: ShimMessage) -> None:
        self._outbox.put(message)

    def _read(self, requests: Iterator[ShimMessage]) -> None:
        try:
            for message in requests:
                self._handle(message)
        except ProtocolError as error:
            log.error("closing the chaincode stream: %s", error)
        except grpc.RpcError as error:  # the stream broke (peer gone, server stopping): nothing to answer
            log.info("chaincode stream ended: %s", error)
        except Exception:
            log.exception("chaincode stream handler failed")
        finally:
            self.close()

    def _handle(self, message: ShimMessage) -> None:
        if message.type == ShimMessage.KEEPALIVE:
            self._send(message)
            return
        try:
            if self.state == CREATED and message.type == ShimMessage.REGISTERED:
                self.state = ESTABLISHED
            elif self.state == ESTABLISHED and message.type == ShimMessage.READY:
                self.features = announced_features(message.payload)
                self.state = READY
                log.info(
                    "peer ready; write batches of up to %s, multi-key reads of up to %s",
                    self.features.write_batch_size or "none (single calls)",
                    self.features.multiple_keys_size or "none (single calls)",
                )
            elif self.state == READY and message.type in (ShimMessage.RESPONSE, ShimMessage.ERROR):
                self._deliver(message)
            elif self.state == READY and message.type in (ShimMessage.TRANSACTION, ShimMessage.INIT):
                self._executor.submit(self._execute, message)
            else:
                said = ""
                if message.type == ShimMessage.ERROR:
                    said = f" (the peer says: {message.payload.decode('utf-8', 'replace')})"
                raise ProtocolError(
                    f"[{_short(message.txid)}] Chaincode handler cannot handle message "
                    f"({_type_name(message.type)}) while in state: {self.state}{said}"
                )
        except ProtocolError as error:
            self._send(
                ShimMessage(
                    type=ShimMessage.ERROR,
                    payload=str(error).encode(),
                    txid=message.txid,
                    channel_id=message.channel_id,
                )
            )
            raise

    def _deliver(self, message: ShimMessage) -> None:
        with self._lock:
            answer = self._waiting.get((message.channel_id, message.txid))
        if answer is None:
            raise ProtocolError(
                f"[{_short(message.txid)}] {_type_name(message.type)} for a transaction that is not waiting for one"
            )
        answer.put(message)

    def _execute(self, message: ShimMessage) -> None:
        try:
            reply = self._run(message)
        except (DecodeError, ProposalError) as error:
            reply = self._error(message, f"failed to create new ChaincodeStub: {error}")
        except Exception:
            log.exception("[%s] chaincode failed on %s", _short(message.txid), _type_name(message.type))
            reply = self._error(message, f"[{_short(message.txid)}] chaincode failed: internal error")
        self._send(reply)

    def _run(self, message: ShimMessage) -> ShimMessage:
        chaincode_input = chaincode_pb2.ChaincodeInput.FromString(message.payload)
        context = read_signed_proposal(message.proposal) if message.HasField("proposal") else TransactionContext()
        stub = ChaincodeStub(
            self.call, message.channel_id, message.txid, chaincode_input, context, self._peer_msp_id, self.features
        )
        is_init = message.type == ShimMessage.INIT
        response = self._chaincode.init(stub) if is_init else self._chaincode.invoke(stub)
        if response.ok:
            try:
                stub.flush_writes()  # Chaincode.invoke has done so already; another ChaincodeInterface may not
            except StubError as error:
                return self._error(
                    message, f"[{_short(message.txid)}] failed to send the transaction's writes: {error}"
                )
        else:
            stub.discard_writes()
        event = (
            chaincode_event_pb2.ChaincodeEvent(event_name=stub.event.name, payload=stub.event.payload)
            if stub.event
            else None
        )
        if is_init and not response.ok:
            return ShimMessage(
                type=ShimMessage.ERROR,
                payload=response.message.encode(),
                txid=message.txid,
                channel_id=message.channel_id,
                chaincode_event=event,
            )
        result = proposal_response_pb2.Response(
            status=response.status, message=response.message, payload=response.payload
        )
        return ShimMessage(
            type=ShimMessage.COMPLETED,
            payload=result.SerializeToString(),
            txid=message.txid,
            channel_id=message.channel_id,
            chaincode_event=event,
        )

    @staticmethod
    def _error(message: ShimMessage, text: str) -> ShimMessage:
        return ShimMessage(
            type=ShimMessage.ERROR, payload=text.encode(), txid=message.txid, channel_id=message.channel_id
        )
