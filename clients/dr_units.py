"""The units client: 30-minute meter history (signed by the meters, relayed by the RA), 基準値計画 forecasts and the
settlement of a command per 30-minute unit by Japan's rules (chaincode.contracts.dr_units).

    units = UnitsClient(gateway.get_network("grid"), topology.organisation("RA1"), meters=operator)
    units.post_history([HistoryDay("RA1", "C1", "2026-11-24", [120, 118, ...]), ...])
    figures = units.unit_settlement("7")       # what the caller may see, from its own peer
    units.record_statement("7")                # an AC, once "7" is settled: what the TSO pays it, both endorsing
    units.deliver_shares("7")                  # and each of its RAs' share, to that RA's collection

Days are JST "YYYY-MM-DD", each with its 48 Wh values from 00:00; money is in sen.
"""

import base64
import json
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from chaincode.contracts.meter_attestation import history_statement
from clients.contract import ContractClient
from clients.dr import MeterSource, submit_retried
from consortium import topology as topology_file
from consortium.policies import private_endorsers
from consortium.topology import Topology
from gateway.errors import EndorseError

HISTORY_BATCH_DAYS = 700  # consumer-days per post_history transaction: 20 consumers' five weeks


@dataclass(frozen=True)
class HistoryDay:
    """One consumer's 30-minute values of one JST day, as its smart meter recorded them."""

    ra: str
    consumer: str
    day: str
    wh: tuple[int, ...]

    def as_json(self) -> dict:
        return {"consumer": self.consumer, "day": self.day, "wh": list(self.wh)}


def history_signatures(days: Iterable[HistoryDay], meters: MeterSource) -> dict:
    """transient "meter_signatures" for a batch of history: each consumer's days signed by its own meter."""
    by_consumer: dict[str, list[HistoryDay]] = {}
    for day in days:
        by_consumer.setdefault(day.consumer, []).append(day)
    signatures = {}
    for consumer, own in by_consumer.items():
        meter = meters.meter(consumer)
        statement = history_statement(consumer, [(d.day, list(d.wh)) for d in own])
        signatures[consumer] = {
            "certificate": meter.certificate.decode(),
            "signature": base64.b64encode(meter.signer.sign(statement)).decode(),
        }
    return signatures


def history_batches(days: Iterable[HistoryDay], size: int = HISTORY_BATCH_DAYS) -> Iterator[list[HistoryDay]]:
    """Batches of one RA's consumer-days, whole consumers together (one meter signature each) where they fit."""
    by_ra: dict[str, dict[str, list[HistoryDay]]] = {}
    for day in days:
        by_ra.setdefault(day.ra, {}).setdefault(day.consumer, []).append(day)
    for consumers in by_ra.values():
        batch: list[HistoryDay] = []
        for own in consumers.values():
            for start in range(0, len(own), size):
                part = own[start : start + size]
                if batch and len(batch) + len(part) > size:
                    yield batch
                    batch = []
                batch.extend(part)
        if batch:
            yield batch


class UnitsClient(ContractClient):
    """The units contract as one organisation (or one smart meter) uses it; `meters` as in clients.dr.DrClient."""

    contract_name = "units"
    meters: MeterSource | None = None

    @classmethod
    def of(cls, session, topology: Topology, meters: MeterSource | None = None) -> "UnitsClient":
        """The units client of a clients.session.Session (its channel and organisation)."""
        client = cls(session.dr.channel, session.org, session.dr.all_msp_ids, topology)
        client.meters = meters
        return client

    def post_history(self, days: list[HistoryDay], attempts: int = 3) -> dict:
        """One post_history transaction (private to the RA's collection, endorsed by its peer and its AC's), the
        days signed by their meters when the client has `meters`. An MVCC loss or an unknown fate is tried again;
        a batch refused as "already recorded" after an attempt whose fate was unknown counts as posted when the
        ledger holds exactly those values."""
        transient = {"history": json.dumps([d.as_json() for d in days], separators=(",", ":"))}
        if self.meters is not None:
            transient["meter_signatures"] = json.dumps(history_signatures(days, self.meters))
        return submit_retried(
            self,
            "post_history",
            transient=transient,
            attempts=attempts,
            already_recorded=lambda refusal: self._already_recorded(days, refusal),
        )

    def history(self, consumer: str, first_day: str, last_day: str) -> dict:
        return self.evaluate("get_history", consumer, first_day, last_day)

    def submit_forecast(self, command_id: str, plan: dict[str, list[int]]) -> dict:
        """An RA's 基準値計画 for a command: {consumer: [Wh per 30-minute unit]}, locked once written."""
        return self.submit("submit_forecast", command_id, transient={"forecast": json.dumps(plan)}, private=True)

    def unit_settlement(self, command_id: str) -> dict:
        """The command's settlement per 30-minute unit as the caller may see it, from its own peer (an RA's without
        the sen: see chaincode.contracts.dr_units)."""
        return self.evaluate("get_unit_settlement", command_id)

    def record_statement(self, command_id: str, ac: str | None = None) -> dict:
        """Records AC `ac`'s statement of a settled command (an AC: its own by default) in that AC's collection,
        endorsed by the AC's peer and the TSO's as the collection's policy requires, salted with a fresh random
        value; the summary, which holds no money (statement() has the figures), and its "transaction" id."""
        ac = ac or self.org.name
        transient = {"salt": secrets.token_hex(16)}
        summary, tx_id = self._first_endorsed("record_statement", (command_id, ac), transient, self._writers(ac))
        return {**summary, "transaction": tx_id}

    def deliver_shares(self, command_id: str, ac: str | None = None) -> list[dict]:
        """Delivers each RA's share of AC `ac`'s recorded statement to the RA's collection (deliver_share), endorsed
        by the RA's peer and the AC's (the TSO's when that pair cannot), each RA's peer receiving its own share
        only; the summaries of those not delivered before."""
        delivered = []
        for ra, share in sorted(self.statement(command_id, ac)["shares"].items()):
            transient = {"share": json.dumps(share)}
            try:
                summary, tx_id = self._first_endorsed("deliver_share", (command_id, ra), transient, self._writers(ra))
            except EndorseError as error:
                if error.refused and "is already delivered" in str(error):
                    continue
                raise
            delivered.append({**summary, "transaction": tx_id})
        return delivered

    def statement(self, command_id: str, ac: str | None = None) -> dict:
        """AC `ac`'s recorded statement of a command and its RAs' shares (to that AC and the TSO), from the
        caller's own peer."""
        return self.evaluate("get_statement", command_id, ac or self.org.name)

    def _writers(self, owner: str) -> list[list[str]]:
        """The MSP ids that may endorse a write to the collection AC or RA `owner` owns, in the order to try."""
        topology = self._topology or topology_file.load()
        return [[topology.organisation(name).msp_id for name in names] for names in private_endorsers(topology, owner)]

    def _already_recorded(self, days: list[HistoryDay], refusal: EndorseError) -> dict:
        """The summary of a batch the ledger already holds exactly; else the refusal."""
        if not self._holds(days):
            raise refusal
        return {"ra": self.org.name, "days": len(days), "already_recorded": True}

    def _holds(self, days: list[HistoryDay]) -> bool:
        for consumer in sorted({d.consumer for d in days}):
            own = [d for d in days if d.consumer == consumer]
            shown = self.history(consumer, min(d.day for d in own), max(d.day for d in own))
            recorded = {d["day"]: tuple(d["wh"]) for d in shown["days"]}
            if any(recorded.get(d.day) != d.wh for d in own):
                return False
        return True
