"""The transaction context a chaincode reads from the SignedProposal the peer forwards with each TRANSACTION."""

import hashlib
from datetime import UTC

from fabric_protos.common import common_pb2
from fabric_protos.peer import proposal_pb2
from google.protobuf.message import DecodeError

from chaincode.shim.stub import TransactionContext

_STUB_HEADER_TYPES = (common_pb2.ENDORSER_TRANSACTION, common_pb2.CONFIG)


class ProposalError(ValueError):
    """The SignedProposal cannot be read as a transaction proposal."""


def read_signed_proposal(signed_proposal: proposal_pb2.SignedProposal) -> TransactionContext:
    """Proposal ← proposal_bytes; Header ← proposal.header; creator and nonce from its SignatureHeader; timestamp
    from its ChannelHeader; the transient map from the ChaincodeProposalPayload."""
    try:
        proposal = proposal_pb2.Proposal.FromString(signed_proposal.proposal_bytes)
        if not proposal.header:
            raise ProposalError("failed to extract Proposal fields: proposal header is nil")
        header = common_pb2.Header.FromString(proposal.header)
        channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
        signature_header = common_pb2.SignatureHeader.FromString(header.signature_header)
        payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    except DecodeError as error:
        raise ProposalError(f"failed to extract proposal: {error}") from None
    if channel_header.type not in _STUB_HEADER_TYPES:
        raise ProposalError(
            f"invalid channel header type. Expected ENDORSER_TRANSACTION or CONFIG, received {channel_header.type}"
        )
    epoch = channel_header.epoch.to_bytes(8, "little")
    binding = hashlib.sha256(signature_header.nonce + signature_header.creator + epoch).digest()
    timestamp = channel_header.timestamp.ToDatetime(tzinfo=UTC) if channel_header.HasField("timestamp") else None
    return TransactionContext(
        creator=signature_header.creator,
        transient=dict(payload.TransientMap),
        timestamp=timestamp,
        binding=binding,
        signed_proposal=signed_proposal,
    )
