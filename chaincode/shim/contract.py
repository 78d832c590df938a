"""Contracts in the style of fabric-contract-api: a class per contract, a method per transaction, `ctx` first.

    class RecordsContract(Contract):
        name = "records"

        @submit
        def put_record(self, ctx, key: str, record: dict) -> dict: ...

        @evaluate
        def get_record(self, ctx, key: str) -> bytes: ...

    chaincode = Chaincode([RecordsContract()])

Every public method of a contract is a transaction and must say which kind: `@submit` (may write; clients submit
it) or `@evaluate` (read-only; clients evaluate it, and a write from it is refused). A public method with neither
is a mistake Chaincode() reports; helpers start with an underscore.

On the wire the function is "<contract name>:<method name>" ("records:put_record"); a bare name goes to the first
contract. Arguments arrive as strings and are converted by the parameter's annotation: str (or none), int, bool
("true"/"false"), dict or list (JSON), bytes (raw). The return value becomes the response payload: bytes as they
are, str as UTF-8, None as empty, anything else as canonical JSON.

Errors: a `ContractError("failed to <what>: <why>")` reaches the caller as it is (status 500 unless it says
otherwise); a ledger or identity error the contract lets through becomes "failed to <method>: <its message>"
(the method's name with spaces for underscores: "failed to put record: …"); bad arguments or an unknown function
get status 400; anything else is logged here and the caller reads only "failed to <method>: internal error".
"""

import inspect
import json
import logging
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from chaincode.shim.errors import ContractError, IdentityError, StubError
from chaincode.shim.identity import ClientIdentity
from chaincode.shim.response import BAD_REQUEST, ERROR, Response, error, success
from chaincode.shim.stub import KV, BaseStub, KeyModification, ResultIterator

log = logging.getLogger(__name__)

SUBMIT = "SUBMIT"
EVALUATE = "EVALUATE"
# fabric-contract-api's system contract; tools ask it for the chaincode's metadata.
SYSTEM_CONTRACT = "org.hyperledger.fabric"
_KIND = "__transaction_kind__"
_ARGUMENT_TYPES = (str, int, bool, dict, list, bytes)
_INTEGER = re.compile(r"-?[0-9]+")


def submit(method: Callable) -> Callable:
    """Marks a transaction that may write to the ledger."""
    setattr(method, _KIND, SUBMIT)
    return method


def evaluate(method: Callable) -> Callable:
    """Marks a read-only transaction: it is evaluated, and any write it attempts fails."""
    setattr(method, _KIND, EVALUATE)
    return method


class Context:
    """What a transaction gets as `ctx`: the stub and the identity of the caller."""

    def __init__(self, stub: BaseStub):
        self.stub = stub

    @cached_property
    def client_identity(self) -> ClientIdentity:
        return self.stub.get_client_identity()


class Contract:
    """Base of every contract; `name` (default: the class name) prefixes its functions on the wire."""

    name: str = ""

    def __init__(self, name: str | None = None):
        self.name = name or type(self).name or type(self).__name__


@dataclass(frozen=True)
class Transaction:
    contract: Contract
    name: str
    kind: str  # SUBMIT or EVALUATE
    method: Callable
    parameters: tuple[inspect.Parameter, ...]  # after ctx
    types: dict[str, type]

    @property
    def function(self) -> str:
        return f"{self.contract.name}:{self.name}"

    @property
    def read_only(self) -> bool:
        return self.kind == EVALUATE

    @property
    def action(self) -> str:
        """How error messages name it: "put_record" reads "put record" in "failed to put record: …"."""
        return self.name.replace("_", " ")


class ReadOnlyStub(BaseStub):
    """The stub of an @evaluate transaction: reads and events go to the transaction's own stub, writes fail."""

    def __init__(self, stub: BaseStub, transaction: str):
        super().__init__(stub.get_channel_id(), stub.get_tx_id(), stub.get_args(), stub._context, stub._peer_msp_id)
        self._stub = stub
        self._transaction = transaction

    def put_state(self, key: str, value: bytes | str) -> None:
        raise self._refused("put_state")

    def del_state(self, key: str) -> None:
        raise self._refused("del_state")

    def put_private_data(self, collection: str, key: str, value: bytes | str) -> None:
        raise self._refused("put_private_data")

    def del_private_data(self, collection: str, key: str) -> None:
        raise self._refused("del_private_data")

    def purge_private_data(self, collection: str, key: str) -> None:
        raise self._refused("purge_private_data")

    def set_event(self, name: str, payload: bytes | str = b"") -> None:
        self._stub.set_event(name, payload)

    def _refused(self, write: str) -> StubError:
        return StubError(f"{self._transaction} is a read-only (@evaluate) transaction; it cannot {write}")

    def _get_state(self, collection: str, key: str) -> bytes | None:
        return self._stub._get_state(collection, key)

    def _get_private_data_hash(self, collection: str, key: str) -> bytes | None:
        return self._stub._get_private_data_hash(collection, key)

    def _get_multiple(self, collection: str, state_keys: list[str]) -> list[bytes | None]:
        return self._stub._get_multiple(collection, state_keys)

    def _range(self, collection: str, start_key: str, end_key: str) -> ResultIterator[KV]:
        return self._stub._range(collection, start_key, end_key)

    def _history(self, key: str) -> ResultIterator[KeyModification]:
        return self._stub._history(key)


class ChaincodeInterface(Protocol):
    """What runs transactions on a stub (the shim's server, the in-memory world): Chaincode is one."""

    def init(self, stub: BaseStub) -> Response: ...

    def invoke(self, stub: BaseStub) -> Response: ...


class Chaincode:
    """The contracts one chaincode serves, routing each invocation to its transaction."""

    def __init__(self, contracts: list[Contract]):
        if not contracts:
            raise ValueError("a chaincode needs at least one contract")
        self.contracts: dict[str, Contract] = {}
        self._transactions: dict[tuple[str, str], Transaction] = {}
        for contract in contracts:
            if contract.name in self.contracts or contract.name == SYSTEM_CONTRACT or ":" in contract.name:
                raise ValueError(f"contract name {contract.name!r} is taken or contains ':'")
            self.contracts[contract.name] = contract
            for transaction in _transactions_of(contract):
                self._transactions[(contract.name, transaction.name)] = transaction
        self.default_contract = contracts[0].name

    def transaction(self, function: str) -> Transaction | None:
        """The transaction a wire function name ("contract:method", or a bare method of the first contract) names."""
        contract, _, name = function.rpartition(":")
        return self._transactions.get((contract or self.default_contract, name))

    def init(self, stub: BaseStub) -> Response:
        """Init with no function succeeds; with one, it runs like any invocation (as fabric-contract-api)."""
        function, _ = stub.get_function_and_parameters()
        return self.invoke(stub) if function else success()

    def invoke(self, stub: BaseStub) -> Response:
        args = stub.get_args()
        function = args[0].decode("utf-8", errors="replace") if args else ""
        if not function:
            return error("no function name given", BAD_REQUEST)
        if function == f"{SYSTEM_CONTRACT}:GetMetadata":
            return success(_json(self.metadata()))
        transaction = self.transaction(function)
        if transaction is None:
            return error(_unknown_function(function, self.contracts, self.default_contract), BAD_REQUEST)
        try:
            values = _convert_arguments(transaction, args[1:])
        except ValueError as bad:
            return error(f"failed to {transaction.action}: {bad}", BAD_REQUEST)
        ctx = Context(ReadOnlyStub(stub, transaction.function) if transaction.read_only else stub)
        try:
            result = transaction.method(ctx, *values)
            stub.flush_writes()  # here, so that a write the peer refuses reads as any other ledger error
        except ContractError as refused:
            return error(refused.message, refused.status)
        except (StubError, IdentityError) as failed:
            return error(f"failed to {transaction.action}: {failed}")
        except Exception:
            log.exception("[%s] %s failed", stub.get_tx_id()[:8], transaction.function)
            return error(f"failed to {transaction.action}: internal error", ERROR)
        try:
            return success(_payload(result))
        except (TypeError, ValueError):
            log.exception("[%s] %s returned a value that is not JSON", stub.get_tx_id()[:8], transaction.function)
            return error(f"failed to {transaction.action}: internal error", ERROR)

    def metadata(self) -> dict:
        """Contracts and their transactions, in the shape fabric-contract-api's GetMetadata answers."""
        contracts = {}
        for name in self.contracts:
            transactions = [t for (c, _), t in self._transactions.items() if c == name]
            contracts[name] = {
                "name": name,
                "transactions": [
                    {
                        "name": t.name,
                        "tag": [t.kind],
                        "parameters": [
                            {"name": p.name, "schema": {"type": _schema_type(t.types.get(p.name, str))}}
                            for p in t.parameters
                        ],
                    }
                    for t in transactions
                ],
            }
        return {"contracts": contracts, "info": {"title": "gridledger", "version": "1"}}


def _transactions_of(contract: Contract) -> list[Transaction]:
    cls = type(contract)
    found = []
    for name in sorted(dir(cls)):
        attribute = inspect.getattr_static(cls, name)
        if name.startswith("_") or name == "name" or not inspect.isfunction(attribute):
            continue
        kind = getattr(attribute, _KIND, None)
        if kind is None:
            raise TypeError(
                f"{cls.__name__}.{name} is public but marked neither @submit nor @evaluate: mark it, "
                f"or make it a helper with a leading underscore"
            )
        signature = inspect.signature(attribute)
        parameters = list(signature.parameters.values())[1:]  # after self
        if not parameters or parameters[0].name != "ctx":
            raise TypeError(f"{cls.__name__}.{name} must take ctx as its first argument")
        parameters = parameters[1:]
        hints = typing.get_type_hints(attribute)
        for parameter in parameters:
            if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
                raise TypeError(f"{cls.__name__}.{name}: parameter {parameter.name} must be positional")
            if hints.get(parameter.name, str) not in _ARGUMENT_TYPES:
                raise TypeError(
                    f"{cls.__name__}.{name}: parameter {parameter.name} has type "
                    f"{hints[parameter.name]}; use one of str, int, bool, dict, list, bytes"
                )
        types = {p.name: hints.get(p.name, str) for p in parameters}
        found.append(Transaction(contract, name, kind, getattr(contract, name), tuple(parameters), types))
    return found


def _convert_arguments(transaction: Transaction, raw: list[bytes]) -> list:
    parameters = transaction.parameters
    required = [p for p in parameters if p.default is inspect.Parameter.empty]
    if not len(required) <= len(raw) <= len(parameters):
        expected = f"{len(parameters)}" if len(required) == len(parameters) else f"{len(required)} to {len(parameters)}"
        names = ", ".join(p.name for p in parameters) or "none"
        raise ValueError(f"expected {expected} arguments ({names}), got {len(raw)}")
    return [
        _convert(parameter.name, transaction.types[parameter.name], value)
        for parameter, value in zip(parameters, raw, strict=False)
    ]


def _convert(name: str, kind: type, raw: bytes) -> Any:
    if kind is bytes:
        return raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"argument {name} is not UTF-8 text") from None
    if kind is str:
        return text
    if kind is int:
        if not _INTEGER.fullmatch(text):
            raise ValueError(f"argument {name} must be an integer, got {_shown(text)}")
        return int(text)
    if kind is bool:
        if text not in ("true", "false"):
            raise ValueError(f"argument {name} must be true or false, got {_shown(text)}")
        return text == "true"
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deep to read
        raise ValueError(
            f"argument {name} must be a JSON {_schema_type(kind)}, got malformed JSON {_shown(text)}"
        ) from None
    if not isinstance(value, kind):
        raise ValueError(f"argument {name} must be a JSON {_schema_type(kind)}, got {type(value).__name__}")
    return value


def _payload(result: object) -> bytes:
    if result is None:
        return b""
    if isinstance(result, bytes):
        return result
    if isinstance(result, str):
        return result.encode()
    return _json(result)


def _json(value: object) -> bytes:
    """Canonical JSON, so that every endorser returns the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _schema_type(kind: type) -> str:
    return {str: "string", int: "integer", bool: "boolean", dict: "object", list: "array", bytes: "string"}[kind]


def _shown(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _unknown_function(function: str, contracts: dict[str, Contract], default_contract: str) -> str:
    contract, _, name = function.rpartition(":")
    contract = contract or default_contract
    if contract not in contracts:
        return f"unknown function {_shown(function)}: no contract named {_shown(contract)}"
    return f"unknown function {_shown(function)}: contract {contract} has no transaction {_shown(name)}"
