"""A dishonest trader (RA2) on the real network tries to rank against the book: while a gate is open it reads
everything it may, the book and the gate through its own peer and through RA1's, the chaincode events, and every
block its peer delivers. It finds commitments and counts and not one order's contents, so there is nothing to
grind its refs against; the same search after the reveal finds the order, which shows the search would see it.

Refused by: the market contract never receives an order's contents while the gate is open
(chaincode.contracts.market.place_orders takes only SHA-256({"order", "salt"})), so no peer, state database,
block or event holds them; and a reveal before the gate's end is refused by every peer.
"""

import json
import re
import time

import pytest
from waiting import eventually

from gateway import grpc_channel_for
from gateway.blocks import fetch_blocks
from gateway.errors import EndorseError
from network.connections import open_session

# What the honest order's contents would look like anywhere they were written in clear (JSON as sent, or as the
# ledger keeps it): a price and a quantity no other test uses.
ORDER = {"participant": "C1", "side": "sell", "price": 27.13, "quantity": 1.357}
MARKERS = (
    rb'"price":\s*27\.13\b',
    rb'"quantity":\s*1\.357\b',
    rb'"price_sen_per_kwh":\s*2713\b',
    rb'"quantity_wh":\s*1357\b',
)


def contents_seen(text: bytes) -> list[bytes]:
    return [m for m in MARKERS if re.search(m, text)]


@pytest.fixture(scope="module")
def sessions(security_network):
    opened = {who: open_session(security_network, who) for who in ("TSO", "RA1", "RA2")}
    yield opened
    for session in opened.values():
        session.close()


def what_ra2_can_read(security_network, ra2, gate: str) -> bytes:
    """Everything RA2 can read about the gate: the book and the gate on its own peer and on RA1's, the gate list,
    and every block its own peer delivers."""
    contract = ra2.market.contract
    answers = [ra2.market.evaluate(name, *args) for name, args in [("get_book", [gate]), ("get_gate", [gate])]]
    answers.append(ra2.market.evaluate("list_gates", "5"))
    ra1_msp = security_network.topology.organisation("RA1").msp_id
    answers.append(json.loads(contract.evaluate("get_book", gate, endorsing_organizations=[ra1_msp])))
    peer = security_network.topology.peer_of("RA2")
    channel = grpc_channel_for(peer.address, security_network.layout.node_dir(peer) / "tls" / "ca.crt")
    blocks = b"\n".join(b.raw for b in fetch_blocks(ra2.gateway, security_network.topology.channel, channel=channel))
    return json.dumps(answers).encode() + b"\n" + blocks


def test_a_trader_reading_the_open_book_finds_no_order_contents(security_network, sessions):
    tso, ra1, ra2 = sessions["TSO"], sessions["RA1"], sessions["RA2"]
    tso.market.configure({"gate_seconds": 20, "proposal_seconds": 5})
    while (config := tso.market.config())["current_gate_end_ms"] / 1000 - time.time() < 15:
        time.sleep(0.2)
    gate = config["current_gate"]
    placed = ra1.market.place_orders([ORDER])
    assert placed["gate"] == gate

    book = ra2.market.evaluate("get_book", gate)
    assert book["gate"]["status"] == "open" and book["gate"]["orders"] >= 1
    (record,) = [o for o in book["orders"] if o["id"] == placed["orders"][0]["id"]]
    assert set(record) == {"id", "gate", "time_ms", "placed_by", "commitment"}
    assert contents_seen(what_ra2_can_read(security_network, ra2, gate)) == []
    heard = []
    with ra2.market.events(start_block=0) as events:  # every chaincode event so far, up to RA1's placement
        for event in events:
            heard.append(event.payload)
            if event.event_name == "OrdersPlaced" and json.loads(event.payload)["gate"] == gate:
                break
    assert contents_seen(b"\n".join(heard)) == []
    # Nor can it make RA1 reveal early: every peer refuses a reveal before the gate's end.
    with pytest.raises(EndorseError, match="stay sealed until then"):
        ra2.market.submit("reveal_orders", gate, json.dumps([{"id": record["id"], "order": ORDER, "salt": "00" * 16}]))

    # After the end RA1 reveals it, and the same search finds it: what was searched would have shown it.
    time.sleep(max(0.0, book["gate"]["end_ms"] / 1000 - time.time() + 0.3))
    assert ra1.market.reveal_orders(gate)["revealed"] == [record["id"]]
    found = eventually(
        lambda: contents_seen(what_ra2_can_read(security_network, ra2, gate)), "the revealed order at RA2", 15
    )
    assert set(found) == set(MARKERS)
