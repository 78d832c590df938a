"""The signed-in account's calls to the ledger: every read and write of a request goes through one of these.

    ledger = LedgerSession(backend, account)          # g.ledger, made per request for g.user
    ledger.evaluate("dr", "list_commands")            # JSON result, run on the account's own peer
    result, tx_id = ledger.submit("dr", "settle", "1")
    summary, tx_ids = ledger.declare("1", declaration)

The work is the account's DR and market clients' (clients.dr, clients.market); this turns what goes wrong into what
a page says: Refused (the chaincode refused, "failed to …: …", or a transaction did not commit: the user's to fix)
or LedgerUnavailable (a peer down, a timeout: not the user's doing). Nothing is cached here, so nothing read for
one account can reach another.
"""

import functools

from flask import abort, flash, g

from clients.contract import ContractClient, Refused
from gateway.errors import CommitError, GatewayError


class LedgerUnavailable(Exception):
    """The ledger could not be asked (a peer down, a timeout): not the user's doing."""


def _translated(call):
    """Raises a GatewayError of `call` as Refused or LedgerUnavailable: a chaincode's refusal reads "failed to
    <what>: <why>"; anything else is the network failing."""

    @functools.wraps(call)
    def translating(*args, **kwargs):
        try:
            return call(*args, **kwargs)
        except GatewayError as error:
            message = str(error)
            if message.startswith("failed to ") or isinstance(error, CommitError):
                raise Refused(message, getattr(error, "tx_id", None)) from error
            raise LedgerUnavailable(message) from error

    return translating


class LedgerSession:
    """One account's use of the gridledger chaincode's contracts during one request."""

    def __init__(self, backend, account):
        self.backend = backend
        self.account = account

    def client(self, contract: str) -> ContractClient:
        """The account's client of `contract` ("dr" or "market"); its session opens on first use."""
        session = self.backend.session(self.account)
        return {"dr": session.dr, "market": session.market}[contract]

    @_translated
    def evaluate(self, contract: str, name: str, *args: str):
        """The JSON result of a query, run on the account's own peer."""
        return self.client(contract).evaluate(name, *args)

    @_translated
    def submit(
        self, contract: str, name: str, *args: str, transient: dict | None = None, private: bool = False
    ) -> tuple[object, str]:
        """Runs a transaction and waits for its commit; returns (its JSON result, its transaction id); `private`
        as in clients.contract.ContractClient.transact."""
        return self.client(contract).transact(name, *args, transient=transient, private=private)

    @_translated
    def declare(self, command_id: str, declaration: dict) -> tuple[dict, list[str]]:
        """An RA's declaration, detail and summary (clients.dr.DrClient.declare)."""
        return self.client("dr").declare(command_id, declaration)


def submit_and_flash(contract: str, name: str, *args: str, done: str, failed: str, private: bool = False) -> None:
    """Submits a transaction as the signed-in account (g.ledger) and tells them the outcome: "<done> in
    transaction <id>.", or "<failed>: <the ledger's reason>"."""
    try:
        _, tx_id = g.ledger.submit(contract, name, *args, private=private)
    except Refused as refused:
        flash(f"{failed}: {refused.message}", "error")
    else:
        flash(f"{done} in transaction {tx_id}.", "committed")


def evaluate_or_404(contract: str, name: str, *args: str, missing: str):
    """The JSON result of a query as the signed-in account (g.ledger), or 404 saying `missing` when the ledger
    refuses it: the loaders' rule, never to tell whether what the account may not see exists."""
    try:
        return g.ledger.evaluate(contract, name, *args)
    except Refused:
        abort(404, description=missing)
