"""The signed-in account's calls to the ledger: every read and write of a request goes through one of these.

    ledger = LedgerSession(backend, account)          # g.ledger, made per request for g.user
    ledger.evaluate("dr", "list_commands")            # JSON result, run on the account's own peer
    result, tx_id = ledger.submit("dr", "declare", "1", transient=..., private=True)

Reads run on the account's own organisation's peer (the one holding its groups' private data) so the ledger
applies the account's visibility. Nothing is cached here, so nothing read for one account can reach another.
"""

import json
import time

from gateway.errors import CommitError, GatewayError


class LedgerRefused(Exception):
    """The chaincode refused the call; `message` is its own ("failed to …: …")."""

    def __init__(self, message: str, tx_id: str | None = None):
        super().__init__(message)
        self.message = message
        self.tx_id = tx_id


class LedgerUnavailable(Exception):
    """The ledger could not be asked (a peer down, a timeout): not the user's doing."""


def _refusal(error: GatewayError) -> Exception:
    """A chaincode's refusal reads "failed to <what>: <why>"; anything else is the network failing."""
    message = str(error)
    if message.startswith("failed to ") or isinstance(error, CommitError):
        return LedgerRefused(message, getattr(error, "tx_id", None))
    return LedgerUnavailable(message)


class LedgerSession:
    """One account's use of the gridledger chaincode's contracts during one request."""

    def __init__(self, backend, account):
        self.backend = backend
        self.account = account
        self.msp_id = backend.msp_id(account)

    def evaluate(self, contract: str, name: str, *args: str):
        """The JSON result of a query, run on the account's own peer. Raises LedgerRefused or LedgerUnavailable."""
        try:
            payload = self.backend.contract(self.account, contract).evaluate(
                name, *args, endorsing_organizations=[self.msp_id]
            )
        except GatewayError as error:
            raise _refusal(error) from error
        return json.loads(payload) if payload else None

    def submit(
        self, contract: str, name: str, *args: str, transient: dict | None = None, private: bool = False
    ) -> tuple[object, str]:
        """Runs a transaction and waits for its commit; returns (its JSON result, its transaction id).

        `private`: it writes only the account's own groups, so its own peer alone endorses it and no other
        organisation receives the transient data; otherwise Fabric chooses the endorsers (public writes need a
        majority). Raises LedgerRefused (with the transaction id) or LedgerUnavailable.
        """
        proposal = self.backend.contract(self.account, contract).new_proposal(
            name, *args, transient=transient, endorsing_organizations=[self.msp_id] if private else None
        )
        try:
            submitted = proposal.endorse().submit()
            status = submitted.status()
        except GatewayError as error:
            raise _refusal(error) from error
        if not status.successful:
            raise LedgerRefused(str(CommitError(status.transaction_id, status.code)), status.transaction_id)
        return (json.loads(submitted.result) if submitted.result else None), submitted.transaction_id

    def declare(self, command_id: str, declaration: dict, seconds: float = 20.0) -> tuple[dict, list[str]]:
        """An RA's declaration: the detail privately, then its summary on the channel (see the dr contract).

        The publication's endorsers each check the private summary's hash, so each must have committed the
        declaration first; a peer a moment behind says "has not declared" and the publication is tried again,
        for a bounded time. Returns (the published summary, [declare tx id, publish tx id])."""
        summary, declare_tx = self.submit(
            "dr", "declare", command_id, transient={"declaration": json.dumps(declaration)}, private=True
        )
        deadline = time.monotonic() + seconds
        while True:
            try:
                published, publish_tx = self.submit("dr", "publish_declaration", command_id, json.dumps(summary))
                return published, [declare_tx, publish_tx]
            except LedgerRefused as refused:
                if "has not declared" not in refused.message or time.monotonic() > deadline:
                    raise
            time.sleep(0.3)
