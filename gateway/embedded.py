"""The embedded backend: gateway.api's interface over an EmbeddedLedger, the same contracts run in process.

    ledger = EmbeddedLedger(build_chaincode(), collections=topology_collections, path="run/embedded.sqlite")
    gateway = EmbeddedGateway(identity, ledger)        # identity: .msp_id and .credentials (PEM), no signer
    contract = gateway.get_network("grid").get_contract("gridledger", "records")
    contract.submit("put_record", "k1", '{"kwh": 3}')  # as gateway.client: endorse, order, commit
    ledger.clock = lambda: moment                      # the time proposals are stamped with (default: now)

For development and for machines that cannot build Fabric: it needs neither Fabric nor its generated protobufs.
It never stands in for the real network in the demo, the integration tests or the benchmarks. A refusal reads as
the Fabric gateway words it, with one error detail per peer ("embedded:<MSP id>").
"""

import base64

from chaincode.shim.identity import CreatorIdentity, serialized_identity
from chaincode.shim.memory import VALID, new_tx_id
from gateway import api
from gateway.api import ChaincodeEvent, CommitStatus, chaincode_response
from gateway.embedded_ledger import EmbeddedLedger, Endorsement, LedgerIntegrityError, block_hash
from gateway.errors import EndorseError, GatewayError

# The engine's names, importable from here as before it had a module of its own.
__all__ = ["EmbeddedGateway", "EmbeddedLedger", "LedgerIntegrityError", "block_hash"]


class EmbeddedContract(api.Contract):
    network: "EmbeddedNetwork"

    def _new_proposal(
        self, args: list[bytes], transient: dict[str, bytes], endorsing_organizations: list[str]
    ) -> "EmbeddedProposal":
        return EmbeddedProposal(self, args, transient, endorsing_organizations)


class EmbeddedNetwork(api.Network):
    gateway: "EmbeddedGateway"
    contract_type = EmbeddedContract

    def _open_chaincode_events(
        self, chaincode_name: str, start_block: int | None, after_transaction_id: str | None
    ) -> "EmbeddedChaincodeEvents":
        ledger = self.gateway.ledger
        if self.name != ledger.channel:
            raise GatewayError(_unknown_channel(self.name, ledger))
        start, skip_through = ledger.event_start(start_block, after_transaction_id)
        return EmbeddedChaincodeEvents(ledger, chaincode_name, start, skip_through)


class EmbeddedGateway(api.Gateway):
    """A connection to the embedded ledger as one identity (.msp_id, .credentials). Closing it ends the event
    streams opened through it."""

    identity: CreatorIdentity
    network_type = EmbeddedNetwork

    def __init__(self, identity: CreatorIdentity, ledger: EmbeddedLedger):
        if not (getattr(identity, "msp_id", None) and getattr(identity, "credentials", None)):
            raise TypeError(f"an identity with msp_id and credentials (a PEM certificate), not {identity!r}")
        super().__init__(identity)
        self.ledger = ledger


class EmbeddedProposal(api.Proposal):
    """A proposal stamped with the client's time now, by the ledger's clock; without endorsing organisations, the
    caller's org's peer runs it. (`timeout` is the client's; in process nothing waits.)"""

    def __init__(
        self,
        contract: EmbeddedContract,
        args: list[bytes],
        transient: dict[str, bytes],
        endorsing_organizations: list[str],
    ):
        identity = contract.network.gateway.identity
        tx_id, _ = new_tx_id(serialized_identity(identity.msp_id, identity.credentials))
        super().__init__(tx_id, endorsing_organizations)
        self.contract = contract
        self.args = args
        self.transient = transient
        self.timestamp = contract.network.gateway.ledger.clock()

    def evaluate(self, timeout: float | None = None) -> bytes:
        problem = self._problem()
        if problem:
            raise GatewayError(problem)
        endorsement = self._ledger.endorse(
            self._identity, self.args, self.transient, self._peers[:1], self.transaction_id, self.timestamp
        )
        if not endorsement.response.ok:
            raise GatewayError(endorsement.response.message, _details(endorsement), refused=True)
        return endorsement.response.payload

    def endorse(self, timeout: float | None = None) -> "EmbeddedTransaction":
        problem = self._problem()
        if problem:
            raise EndorseError(problem, self.transaction_id)
        endorsement = self._ledger.endorse(
            self._identity, self.args, self.transient, self._peers, self.transaction_id, self.timestamp
        )
        if not endorsement.response.ok:
            raise EndorseError(endorsement.response.message, self.transaction_id, _details(endorsement), refused=True)
        return EmbeddedTransaction(self._ledger, endorsement)

    @property
    def _ledger(self) -> EmbeddedLedger:
        return self.contract.network.gateway.ledger

    @property
    def _identity(self) -> CreatorIdentity:
        return self.contract.network.gateway.identity

    @property
    def _peers(self) -> list[str]:
        return self.endorsing_organizations or [self._identity.msp_id]

    def _problem(self) -> str | None:
        """Why no peer would run this proposal: an unknown channel or chaincode (as the gateway words them)."""
        channel, chaincode = self.contract.network.name, self.contract.chaincode_name
        if channel != self._ledger.channel:
            return _unknown_channel(channel, self._ledger)
        if chaincode != self._ledger.chaincode_name:
            return (
                f"make sure the chaincode {chaincode} has been successfully defined on channel {channel} and "
                f"try again: chaincode {chaincode} not found"
            )
        return None


class EmbeddedTransaction(api.Transaction):
    def __init__(self, ledger: EmbeddedLedger, endorsement: Endorsement):
        super().__init__(endorsement.tx_id, endorsement.response.payload)
        self._ledger = ledger
        self._endorsement = endorsement

    def submit(self, timeout: float | None = None) -> "EmbeddedSubmittedTransaction":
        """Orders and commits the transaction (in process, at once)."""
        status = self._ledger.order(self._endorsement)
        return EmbeddedSubmittedTransaction(self.transaction_id, self.result, status)


class EmbeddedSubmittedTransaction(api.SubmittedTransaction):
    def __init__(self, transaction_id: str, result: bytes, status: CommitStatus):
        super().__init__(transaction_id, result)
        self._status = status

    def status(self, timeout: float | None = None) -> CommitStatus:
        return self._status


class EmbeddedChaincodeEvents(api.ChaincodeEvents):
    """The events of the ledger's blocks from `start_block` on, waiting for new blocks."""

    def __init__(self, ledger: EmbeddedLedger, chaincode_name: str, start_block: int, skip_through: str | None):
        super().__init__()
        self._ledger = ledger
        self._chaincode_name = chaincode_name
        self._next_block = start_block
        self._skip_through = skip_through

    def _receive(self) -> list[ChaincodeEvent] | None:
        block = self._ledger.wait_for_block(self._next_block, lambda: self.closed)
        if block is None:
            return None
        self._next_block += 1
        events = []
        for record in block.transactions:
            if self._skip_through:
                if record["tx_id"] == self._skip_through:
                    self._skip_through = None
                continue
            event = record["event"]
            if event and record["validation_code"] == VALID and record["chaincode"] == self._chaincode_name:
                events.append(
                    ChaincodeEvent(
                        block.number,
                        record["tx_id"],
                        record["chaincode"],
                        event["name"],
                        base64.b64decode(event["payload"]),
                    )
                )
        return events

    def _stop(self) -> None:
        self._ledger.wake_waiters()


def _details(endorsement: Endorsement) -> tuple[tuple[str, str, str], ...]:
    """What gateway.client reports per peer: (address, msp_id, "chaincode response <status>, <message>")."""
    response = endorsement.response
    return (
        (
            f"embedded:{endorsement.peer_msp_id}",
            endorsement.peer_msp_id,
            chaincode_response(response.status, response.message),
        ),
    )


def _unknown_channel(name: str, ledger: EmbeddedLedger) -> str:
    return f"channel '{name}' not found (the embedded ledger serves '{ledger.channel}')"
