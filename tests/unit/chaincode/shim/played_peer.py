"""The peer's end of the chaincode protocol, played by a test over a real gRPC stream: it answers REGISTER,
sends TRANSACTIONs carrying real SignedProposals, and answers the chaincode's ledger calls."""

import datetime
import os
import queue
from contextlib import contextmanager

import grpc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fabric_protos.peer import (
    chaincode_pb2,
    chaincode_shim_pb2,
    chaincode_shim_pb2_grpc,
    proposal_pb2,
    proposal_response_pb2,
)

from chaincode.shim import Chaincode, serialized_identity
from chaincode.shim.server import ChaincodeServer
from gateway.protoutil import chaincode_proposal, transaction_id

Message = chaincode_shim_pb2.ChaincodeMessage
PACKAGE_ID = "gridledger_1:0123abcd"
CHANNEL = "grid"


def signed_proposal(identity, args: list[bytes], transient: dict[str, bytes] | None = None):
    """A proposal as the gateway client builds one (FABRIC-NOTES B.1-4); returns (tx id, SignedProposal)."""
    creator = serialized_identity(identity.msp_id, identity.credentials)
    nonce = os.urandom(24)
    timestamp = datetime.datetime.now(datetime.UTC)  # the endorser refuses a time off its clock
    proposal = chaincode_proposal(CHANNEL, "gridledger", args, transient or {}, creator, nonce, timestamp)
    proposal_bytes = proposal.SerializeToString()
    tx_id = transaction_id(nonce, creator)
    signature = identity.private_key.sign(proposal_bytes, ec.ECDSA(hashes.SHA256()))
    return tx_id, proposal_pb2.SignedProposal(proposal_bytes=proposal_bytes, signature=signature)


class PlayedPeer:
    """The peer's end of one Connect stream."""

    def __init__(self, channel: grpc.Channel):
        self._outgoing: queue.Queue = queue.Queue()
        self._replies = chaincode_shim_pb2_grpc.ChaincodeStub(channel).Connect(
            iter(self._outgoing.get, None), timeout=30
        )

    def send(self, **fields) -> None:
        self._outgoing.put(Message(**fields))

    def receive(self) -> Message:
        return next(self._replies)

    def hang_up(self) -> None:
        self._outgoing.put(None)

    def register(self, ready: bytes = b"") -> Message:
        """Answers REGISTER; `ready` is READY's payload (a v3.1 peer's ChaincodeAdditionalParams; empty before)."""
        register = self.receive()
        self.send(type=Message.REGISTERED)
        self.send(type=Message.READY, payload=ready)
        return register

    def transaction(self, identity, *args: str, transient=None) -> str:
        raw = [arg.encode() for arg in args]
        tx_id, proposal = signed_proposal(identity, raw, transient)
        self.send(
            type=Message.TRANSACTION,
            txid=tx_id,
            channel_id=CHANNEL,
            proposal=proposal,
            payload=chaincode_pb2.ChaincodeInput(args=raw).SerializeToString(),
        )
        return tx_id

    def answer(self, request: Message, payload: bytes = b"", error: str | None = None) -> None:
        self.send(
            type=Message.ERROR if error else Message.RESPONSE,
            payload=error.encode() if error else payload,
            txid=request.txid,
            channel_id=request.channel_id,
        )


def completed_response(message: Message) -> proposal_response_pb2.Response:
    assert message.type == Message.COMPLETED, Message.Type.Name(message.type)
    return proposal_response_pb2.Response.FromString(message.payload)


@contextmanager
def served(contract, peer_msp_id: str):
    """A real ChaincodeServer of `contract` on a free loopback port, stopped afterwards."""
    server = ChaincodeServer(Chaincode([contract]), PACKAGE_ID, "127.0.0.1:0", peer_msp_id=peer_msp_id)
    server.start()
    try:
        yield server
    finally:
        server.stop(0)


@contextmanager
def connected(server):
    """A PlayedPeer on a fresh stream to `server`, hung up afterwards."""
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        played = PlayedPeer(channel)
        try:
            yield played
        finally:
            played.hang_up()
