"""The client side of gridledger: identities, signing, and the Fabric Gateway client with its errors."""

import importlib

from gateway.errors import CommitError, CommitStatusError, EndorseError, GatewayError, SubmitError, TransactionError
from gateway.signing import Signer

# Loaded on first use: these need Fabric's generated protobufs, which the embedded backend and the CLI's
# setup commands must be importable without.
_LAZY = {
    "connect": "gateway.client",
    "grpc_channel_for": "gateway.client",
    "Gateway": "gateway.client",
    "Network": "gateway.client",
    "Contract": "gateway.client",
    "Proposal": "gateway.client",
    "Transaction": "gateway.client",
    "SubmittedTransaction": "gateway.client",
    "CommitStatus": "gateway.results",
    "ChaincodeEvent": "gateway.results",
    "ChaincodeEvents": "gateway.client",
    "X509Identity": "gateway.identity",
    "identity_from_msp_dir": "gateway.identity",
}

__all__ = [
    *_LAZY,
    "Signer",
    "GatewayError",
    "TransactionError",
    "EndorseError",
    "SubmitError",
    "CommitStatusError",
    "CommitError",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gateway' has no attribute {name!r}")
