"""The Python chaincode shim: the contract API after fabric-contract-api, the stub API, an in-memory world for
tests and the embedded ledger, and (in chaincode.shim.server) Fabric's chaincode protocol over gRPC.

What this package exports needs no Fabric protobufs, so contracts run in process where they cannot be generated;
the chaincode-as-a-service server, which does, is imported from chaincode.shim.server.
"""

from chaincode.shim.contract import Chaincode, Context, Contract, evaluate, submit
from chaincode.shim.errors import ContractError, IdentityError, StubError
from chaincode.shim.identity import ClientIdentity, serialized_identity
from chaincode.shim.memory import Collection, MemoryStub, MemoryWorld
from chaincode.shim.response import Response
from chaincode.shim.stub import KV, BaseStub, KeyModification

__all__ = [
    "KV",
    "BaseStub",
    "Chaincode",
    "ClientIdentity",
    "Collection",
    "Context",
    "Contract",
    "ContractError",
    "IdentityError",
    "KeyModification",
    "MemoryStub",
    "MemoryWorld",
    "Response",
    "StubError",
    "evaluate",
    "serialized_identity",
    "submit",
]
