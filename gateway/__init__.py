"""The client side of gridledger: the Gateway interface (gateway.api), its Fabric client and its embedded backend.

    from gateway import connect, grpc_channel_for, identity_from_msp_dir
    identity, signer = identity_from_msp_dir(msp_dir, "TSOMSP")
    gateway = connect(identity, signer=signer, channel=grpc_channel_for(address, tls_root_cert))

The embedded backend is gateway.embedded.EmbeddedGateway over a gateway.embedded.EmbeddedLedger; Fabric blocks
are read with gateway.blocks.
"""

import importlib
from typing import Any

from gateway.api import (
    ChaincodeEvent,
    ChaincodeEvents,
    CommitStatus,
    Contract,
    Gateway,
    Network,
    Proposal,
    SubmittedTransaction,
    Transaction,
)
from gateway.errors import CommitError, CommitStatusError, EndorseError, GatewayError, SubmitError, TransactionError
from gateway.signing import Signer

# Loaded on first use: these need Fabric's generated protobufs, which the embedded backend and the CLI's
# setup commands must be importable without.
_LAZY = {
    "connect": "gateway.client",
    "grpc_channel_for": "gateway.client",
    "X509Identity": "gateway.identity",
    "identity_from_msp_dir": "gateway.identity",
}

__all__ = [
    *_LAZY,
    "ChaincodeEvent",
    "ChaincodeEvents",
    "CommitError",
    "CommitStatus",
    "CommitStatusError",
    "Contract",
    "EndorseError",
    "Gateway",
    "GatewayError",
    "Network",
    "Proposal",
    "Signer",
    "SubmitError",
    "SubmittedTransaction",
    "Transaction",
    "TransactionError",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gateway' has no attribute {name!r}")
