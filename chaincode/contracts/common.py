"""What every contract shares: canonical JSON, the "failed to <action>: <why>" errors, the bound on the transaction's
time, who is calling, whose a consumer is, and the transaction's time in JST.

A contract states each transaction's action once, with @action("place orders"); whatever checks it runs raise
Refusal("why") and @action turns that into ContractError("failed to place orders: why"), so that every refusal
reads the same and no helper needs to know which transaction called it.

Bounded time: a transaction's timestamp is its client's, the same on every endorser, and the contracts decide by
it (gates, DR deadlines, settlement). So before anything else @action compares it with the endorser's own clock and refuses it
beyond the topology's tolerance (consortium.topology: time.tolerance_seconds): a client can no longer place itself
in another gate or settle early by dating its proposal. The endorser's clock is the system clock on a peer; a
contract's `clock` attribute replaces it (unit tests set one; an in-process ledger without one has no endorser clock
to compare with, and checks nothing).
"""

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from chaincode.shim import ContractError
from consortium.topology import Organisation, Topology
from consortium.units import JST

# Object type of the keys of an RA's consumer registry: the dr contract writes them, both contracts ask whose a
# consumer is.
CONSUMER = "consumer"


def canonical_json(value) -> bytes:
    """Sorted keys, no spaces, UTF-8: every endorser writes the same bytes, and a client can recompute a hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def announced(ctx, event: str, value):
    """Emits the transaction's event with `value` as its payload, and returns `value`: what clients hear is what
    the transaction answered."""
    ctx.stub.set_event(event, canonical_json(value))
    return value


def jst_moment(moment: datetime) -> str:
    """A moment as people on the market read it: "2021-01-14T00:05:00+09:00"."""
    return moment.astimezone(JST).isoformat(timespec="seconds")


class Refusal(Exception):
    """Why a transaction is refused; @action puts "failed to <action>: " in front of it."""


def failure(action: str, why: str) -> ContractError:
    """The error a refusal reaches the caller as: "failed to <action>: <why>"."""
    return ContractError(f"failed to {action}: {why}")


Clock = Callable[[], datetime]


def endorser_time(ctx, clock: Clock | None) -> datetime | None:
    """The endorser's own time: `clock`'s if given, else the system clock when running on a peer (the stub holds
    the signed proposal the peer forwarded), else None (an in-process ledger has no endorser clock)."""
    if clock is not None:
        return clock()
    if ctx.stub.get_signed_proposal() is not None:
        return datetime.now(UTC)
    return None


def check_transaction_time(ctx, tolerance_seconds: int, now: datetime | None) -> None:
    """Refuses a transaction whose timestamp is more than `tolerance_seconds` off `now`, the endorser's clock."""
    if now is None:
        return
    stamp = ctx.stub.get_tx_timestamp()
    if stamp is None:
        raise Refusal("the proposal carries no timestamp")
    off = (stamp - now).total_seconds()
    if abs(off) > tolerance_seconds:
        raise Refusal(
            f"transaction time {jst_moment(stamp)} is {abs(off):.0f} s off this endorser's clock "
            f"({'ahead' if off > 0 else 'behind'}); tolerance {tolerance_seconds} s"
        )


def action(name: str) -> Callable[[Callable], Callable]:
    """Names what a transaction does in its errors: a Refusal raised below it becomes failure(name, why). First it
    bounds the transaction's time (check_transaction_time) by the contract's topology and clock."""

    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def run(self, ctx, *args, **kwargs):
            try:
                check_transaction_time(
                    ctx, self.topology.time_tolerance_seconds, endorser_time(ctx, getattr(self, "clock", None))
                )
                return method(self, ctx, *args, **kwargs)
            except Refusal as refused:
                raise failure(name, str(refused)) from None

        return run

    return decorate


def check_count(what: str, items: list, high: int) -> None:
    if not 1 <= len(items) <= high:
        raise Refusal(f"give 1 to {high} {what}, got {len(items)}")


@dataclass(frozen=True)
class Caller:
    """Who sent the transaction, from its certificate alone: the organisation, and for a smart meter's
    certificate the consumer it measures; a meter acts for its consumer's RA (`org`)."""

    org: Organisation
    meter_of: str | None  # None for the organisation's users


def caller_of(ctx, topology: Topology) -> Caller:
    """The caller as its MSP id and certificate attributes say; never what an argument claims.

    A certificate naming a consumer (attributes role "meter" and consumer) counts only when the meter operator's
    MSP issued it (Fabric has checked the creator's chain against that MSP in the channel configuration): an RA
    that issues itself a meter certificate, for its own consumer or another RA's, is refused here, and so in every
    transaction that trusts a meter identity."""
    identity = ctx.client_identity
    org = next((o for o in topology.organisations if o.msp_id == identity.msp_id), None)
    if org is None:
        raise Refusal(f"{identity.msp_id} is not an organisation of the consortium")
    if identity.get_attribute_value("role") != "meter":
        return Caller(org, None)
    consumer = identity.get_attribute_value("consumer")
    if identity.msp_id != topology.meter_operator_msp_id:
        raise Refusal(
            f"a meter certificate must be issued by the meter operator {topology.meter_operator}, "
            f"not by {org.name} (it names consumer {consumer!r})"
        )
    if not consumer:
        raise Refusal("a meter certificate must name its consumer")
    ra = consumer_ra(ctx, topology, consumer)
    if ra is None:
        raise Refusal(f"the meter's consumer {consumer!r} is no RA's consumer")
    return Caller(topology.organisation(ra), consumer)


def consumer_ra(ctx, topology: Topology, consumer: str) -> str | None:
    """The RA a consumer belongs to (the topology's, or the one whose registry holds its key), or None.
    Only the registry key's hash is read, which every peer holds: any organisation may ask."""
    try:
        return topology.consumer_owner(consumer).name
    except KeyError:
        pass
    key = ctx.stub.create_composite_key(CONSUMER, [consumer])
    for ra in topology.organisations:
        collection = topology.readings_collection_for(ra.name) if ra.role == "ra" else None
        if collection and ctx.stub.get_private_data_hash(collection, key) is not None:
            return ra.name
    return None
