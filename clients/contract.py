"""One organisation's calls to one contract of the consortium's chaincode: JSON in and out, queries on its own peer.

    client.evaluate("get_command", "1")                       # JSON, run on the caller's own peer
    client.submit("settle", "1", private=True)                # JSON, once committed
    result, tx_id = client.transact("issue_command", text)    # the same, with the transaction's id

Failures are the gateway's errors (gateway.errors: EndorseError carries the chaincode's own "failed to …: …" when
it refuses); what a client or a face decides cannot be done is `Refused`.
"""

import json
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from consortium import CHAINCODE_NAME
from consortium.topology import Organisation
from gateway.errors import CommitError, EndorseError, GatewayError

T = TypeVar("T")


class Refused(Exception):
    """What was asked cannot be done, or the ledger refused it; the message says why (the chaincode's own,
    "failed to …: …", when it refused). `tx_id` names the refused transaction, when there was one."""

    def __init__(self, message: str, tx_id: str | None = None):
        super().__init__(message)
        self.message = message
        self.tx_id = tx_id


def eventually(check: Callable[[], T], what: str, seconds: float = 30.0) -> T:
    """check()'s first truthy result. Another organisation's peer commits a block a moment after the submitter's,
    so a read there is retried (on a GatewayError or a falsy result) for a bounded time; then Refused."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            result = check()
            if result:
                return result
        except GatewayError:
            pass
        if time.monotonic() > deadline:
            raise Refused(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(0.3)


class ContractClient:
    """One organisation's use of one contract (`contract_name`) of the chaincode.

    `channel` is a gateway's view of the channel, `gateway.get_network(name)`, on Fabric or the embedded ledger;
    `org` the caller's organisation; `all_msp_ids` every organisation's, for what every peer should endorse.
    """

    contract_name: str

    def __init__(self, channel, org: Organisation, all_msp_ids: Sequence[str] = ()):
        self.channel = channel
        self.org = org
        self.all_msp_ids = list(all_msp_ids)
        self.contract = channel.get_contract(CHAINCODE_NAME, self.contract_name)

    def evaluate(self, name: str, *args: str):
        """The JSON result of a query (None for an empty one), run on the caller's own peer: the one that holds
        its groups' private data, so the ledger applies the caller's visibility."""
        payload = self.contract.evaluate(name, *args, endorsing_organizations=[self.org.msp_id])
        return json.loads(payload) if payload else None

    def submit(
        self, name: str, *args: str, transient: dict | None = None, private: bool = False, all_peers: bool = False
    ):
        """The JSON result of a transaction once it has committed: `transact(...)` without the transaction id."""
        return self.transact(name, *args, transient=transient, private=private, all_peers=all_peers)[0]

    def transact(
        self, name: str, *args: str, transient: dict | None = None, private: bool = False, all_peers: bool = False
    ) -> tuple[object, str]:
        """Runs a transaction and waits for its commit; returns (its JSON result, its transaction id).

        `private`: it writes only the caller's groups, so the caller's own peer alone endorses it and no other
        organisation receives the transient data. `all_peers`: every organisation's peer endorses it (so every peer
        verifies it); if one cannot, the endorsement policy's majority decides instead. Otherwise Fabric chooses
        the endorsers (public writes need a majority). Raises EndorseError, SubmitError, CommitStatusError, or
        CommitError when it was ordered but did not commit as valid.
        """
        if all_peers:
            try:
                return self._transact(name, args, transient, self.all_msp_ids)
            except EndorseError as error:
                if error.refused:  # the contract refused: every peer would
                    raise
        return self._transact(name, args, transient, [self.org.msp_id] if private else None)

    def events(self, start_block: int | None = None, after_transaction_id: str | None = None):
        """The chaincode's events (of every contract) delivered to the caller, from the next block committed or
        from `start_block`, resuming after `after_transaction_id` in that block; until closed."""
        return self.channel.get_chaincode_events(
            CHAINCODE_NAME, start_block=start_block, after_transaction_id=after_transaction_id
        )

    def _transact(self, name: str, args: tuple, transient: dict | None, endorsers: list[str] | None):
        proposal = self.contract.new_proposal(name, *args, transient=transient, endorsing_organizations=endorsers)
        submitted = proposal.endorse().submit()
        status = submitted.status()
        if not status.successful:
            raise CommitError(status.transaction_id, status.code)
        return (json.loads(submitted.result) if submitted.result else None), submitted.transaction_id
