"""One organisation's calls to one contract of the consortium's chaincode: JSON in and out, queries on its own peer.

    client.evaluate("get_command", "1")                       # JSON, run on the caller's own peer
    client.submit("declare", "1", transient=t, private=True)  # JSON, once committed
    result, tx_id = client.transact("issue_command", text)    # the same, with the transaction's id

Failures are the gateway's errors (gateway.errors: EndorseError carries the chaincode's own "failed to …: …" when
it refuses); what a client or a face decides cannot be done is `Refused`.
"""

import json
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from consortium import CHAINCODE_NAME
from consortium import topology as topology_file
from consortium.policies import private_endorsers
from consortium.topology import Organisation, Topology
from gateway.errors import EndorseError, GatewayError

T = TypeVar("T")


# How long a co-endorser may lag behind the caller's own peer before its refusal counts (see ContractClient).
LAG_SECONDS = 15.0


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
    `org` the caller's organisation; `all_msp_ids` every organisation's, for what every peer should endorse;
    `topology` the consortium's (default: consortium.topology.load()), for who endorses a private write.
    """

    contract_name: str

    def __init__(self, channel, org: Organisation, all_msp_ids: Sequence[str] = (), topology: Topology | None = None):
        self.channel = channel
        self.org = org
        self.all_msp_ids = list(all_msp_ids)
        self.contract = channel.get_contract(CHAINCODE_NAME, self.contract_name)
        self._topology = topology
        self._private_endorsers: list[list[str]] | None = None

    @property
    def private_endorsers(self) -> list[list[str]]:
        """The MSP ids whose peers endorse the caller's private writes, in the order tried (consortium.policies
        .private_endorsers): an RA's own peer and its AC's, then its own and the TSO's."""
        if self._private_endorsers is None:
            topology = self._topology or topology_file.load()
            self._private_endorsers = [
                [topology.organisation(name).msp_id for name in names]
                for names in private_endorsers(topology, self.org.name)
            ]
        return self._private_endorsers

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

        `private`: it writes only the caller's own group, so only members of that group endorse it and no other
        organisation receives the transient data: the caller's own peer and a second member's, as the collection's
        endorsement policy requires (nobody writes alone what others rely on; see consortium.policies). An RA's
        write goes to its own peer and its AC's; when that pair cannot endorse (a peer down), to its own and the
        TSO's. `all_peers`: every organisation's peer endorses it (so every peer verifies it); if one cannot, the
        endorsement policy's majority decides instead. Otherwise Fabric chooses the endorsers (public writes need
        a majority). Raises EndorseError, SubmitError, CommitStatusError, or CommitError when it was ordered but
        did not commit as valid.
        """
        if all_peers:
            return self._first_endorsed(name, args, transient, [self.all_msp_ids, None])
        if private:
            return self._first_endorsed(name, args, transient, self.private_endorsers)
        return self._transact(name, args, transient, None)

    def events(self, start_block: int | None = None, after_transaction_id: str | None = None):
        """The chaincode's events (of every contract) delivered to the caller, from the next block committed or
        from `start_block`, resuming after `after_transaction_id` in that block; until closed."""
        return self.channel.get_chaincode_events(
            CHAINCODE_NAME, start_block=start_block, after_transaction_id=after_transaction_id
        )

    def _first_endorsed(self, name: str, args: tuple, transient: dict | None, choices: Sequence[list[str] | None]):
        """The transaction endorsed by the first of `choices` (lists of MSP ids; None: Fabric chooses) whose peers
        can endorse it. A refusal by the contract is final: every honest peer would refuse it too."""
        for choice in choices[:-1]:
            try:
                return self._transact_while_others_lag(name, args, transient, choice)
            except EndorseError as error:
                if error.refused:
                    raise
        return self._transact_while_others_lag(name, args, transient, choices[-1])

    def _transact_while_others_lag(self, name: str, args: tuple, transient: dict | None, endorsers: list[str] | None):
        """_transact, again for up to LAG_SECONDS while only other organisations' peers refuse it: a co-endorser
        that has not yet committed the caller's previous write (its block, or the private data gossip brings)
        refuses what the caller's own peer accepts, e.g. a declaration just after its consumers' registration."""
        deadline = time.monotonic() + LAG_SECONDS
        while True:
            try:
                return self._transact(name, args, transient, endorsers)
            except EndorseError as error:
                refused_by = {msp_id for _, msp_id, _ in error.details}
                if not (error.refused and refused_by and self.org.msp_id not in refused_by):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def _transact(self, name: str, args: tuple, transient: dict | None, endorsers: list[str] | None):
        proposal = self.contract.new_proposal(name, *args, transient=transient, endorsing_organizations=endorsers)
        submitted = proposal.endorse().submit()
        result = submitted.committed()
        return (json.loads(result) if result else None), submitted.transaction_id
