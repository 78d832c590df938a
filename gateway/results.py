"""What a transaction gives back, the same from the Fabric client and the embedded ledger (neither needs the
generated protobufs here): its commit status and chaincode events, and how its arguments become bytes."""

from dataclasses import dataclass


@dataclass(frozen=True)
class CommitStatus:
    """How a transaction committed: `code` is its peer.TxValidationCode name, "VALID" when it took effect."""

    transaction_id: str
    code: str
    block_number: int

    @property
    def successful(self) -> bool:
        return self.code == "VALID"


@dataclass(frozen=True)
class ChaincodeEvent:
    """An event a chaincode set in a committed transaction."""

    block_number: int
    transaction_id: str
    chaincode_name: str
    event_name: str
    payload: bytes


def as_bytes(value: str | bytes, what: str) -> bytes:
    """A transaction argument or transient value as sent: str as UTF-8, bytes as they are."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"{what} must be str or bytes (e.g. json.dumps(...)), not {type(value).__name__}")
