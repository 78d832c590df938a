"""The errors a gateway call raises, one per stage of a transaction, after fabric-gateway's pkg/client/errors.go."""


class GatewayError(Exception):
    """A gateway call failed; `details` holds (address, msp_id, message) for each peer or orderer that said why;
    `refused` is true when the chaincode itself refused the call (the message is then the chaincode's)."""

    def __init__(self, message: str, details: tuple = (), refused: bool = False):
        super().__init__(message)
        self.details = tuple(details)
        self.refused = refused


class TransactionError(GatewayError):
    """A transaction failed at some stage; `tx_id` names it."""

    def __init__(self, message: str, tx_id: str, details: tuple = (), refused: bool = False):
        super().__init__(message, details, refused)
        self.tx_id = tx_id


class EndorseError(TransactionError):
    """Endorsement failed: the chaincode refused the call, or the peers could not agree."""


class SubmitError(TransactionError):
    """The endorsed transaction could not be sent to the ordering service."""


class CommitStatusError(TransactionError):
    """The transaction's commit status could not be obtained."""


class CommitError(TransactionError):
    """The transaction was ordered but did not commit as valid."""

    def __init__(self, tx_id: str, code: str):
        super().__init__(f"transaction {tx_id} failed to commit with status {code}", tx_id)
        self.code = code
