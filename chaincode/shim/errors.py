"""The errors chaincode code raises and the contract router turns into a peer.Response for the caller."""


class ContractError(Exception):
    """A contract refused a transaction; its message ("failed to <what>: <why>") goes back to the caller as is."""

    def __init__(self, message: str, status: int = 500):
        super().__init__(message)
        self.message = message
        self.status = status


class StubError(Exception):
    """A ledger call failed: the peer refused it (its message is kept), or its arguments break Fabric's key rules."""


class IdentityError(Exception):
    """The caller's identity cannot be read, or lacks an attribute value the contract requires."""
