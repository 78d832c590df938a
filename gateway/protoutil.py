"""Fabric's messages as its protoutil package builds and reads them: transaction ids, headers, chaincode proposals,
the chaincode action inside a transaction, validation code names. Shared by the gateway client and block reading."""

import hashlib
from datetime import datetime

from fabric_protos.common import common_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2
from google.protobuf import timestamp_pb2

NONCE_BYTES = 24


def transaction_id(nonce: bytes, creator: bytes) -> str:
    """Fabric's transaction id: hex(SHA-256(nonce ‖ serialized creator)); peers recompute and check it."""
    return hashlib.sha256(nonce + creator).hexdigest()


def message_header(
    header_type: int,
    channel_name: str,
    creator: bytes,
    nonce: bytes,
    extension: bytes = b"",
    timestamp: datetime | None = None,
) -> common_pb2.Header:
    """A message header: the channel header (stamped now unless `timestamp` says when) and the signature header."""
    stamp = timestamp_pb2.Timestamp()
    if timestamp is None:
        stamp.GetCurrentTime()
    else:
        stamp.FromDatetime(timestamp)
    channel_header = common_pb2.ChannelHeader(
        type=header_type,
        timestamp=stamp,
        channel_id=channel_name,
        tx_id=transaction_id(nonce, creator),
        epoch=0,
        extension=extension,
    )
    return common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=common_pb2.SignatureHeader(creator=creator, nonce=nonce).SerializeToString(),
    )


def chaincode_proposal(
    channel_name: str,
    chaincode_name: str,
    args: list[bytes],
    transient: dict[str, bytes],
    creator: bytes,
    nonce: bytes,
    timestamp: datetime | None = None,
) -> proposal_pb2.Proposal:
    """The unsigned proposal, as protoutil.CreateChaincodeProposalWithTransient builds it."""
    chaincode_id = chaincode_pb2.ChaincodeID(name=chaincode_name)
    extension = proposal_pb2.ChaincodeHeaderExtension(chaincode_id=chaincode_id).SerializeToString()
    invocation = chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(
            chaincode_id=chaincode_id, input=chaincode_pb2.ChaincodeInput(args=args)
        )
    )
    # The field really is spelt TransientMap in proposal.proto.
    payload = proposal_pb2.ChaincodeProposalPayload(input=invocation.SerializeToString(), TransientMap=transient)
    return proposal_pb2.Proposal(
        header=message_header(
            common_pb2.ENDORSER_TRANSACTION, channel_name, creator, nonce, extension, timestamp
        ).SerializeToString(),
        payload=payload.SerializeToString(deterministic=True),
    )


def chaincode_action(payload: common_pb2.Payload) -> proposal_pb2.ChaincodeAction | None:
    """The chaincode action (response, read-write set, event) of an endorser transaction's first action; None
    when it has no action. Raises google.protobuf's DecodeError on bytes that are not what they should be."""
    actions = transaction_pb2.Transaction.FromString(payload.data).actions
    if not actions:
        return None
    action_payload = transaction_pb2.ChaincodeActionPayload.FromString(actions[0].payload)
    response_payload = proposal_response_pb2.ProposalResponsePayload.FromString(
        action_payload.action.proposal_response_payload
    )
    return proposal_pb2.ChaincodeAction.FromString(response_payload.extension)


def validation_code_name(code: int) -> str:
    """The peer.TxValidationCode name of `code`, e.g. "MVCC_READ_CONFLICT"."""
    try:
        return transaction_pb2.TxValidationCode.Name(code)
    except ValueError:
        return f"TxValidationCode {code}"
