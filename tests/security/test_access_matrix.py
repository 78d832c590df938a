"""The access-control matrix on the real network: every organisation × every kind of data × every read path of
access_matrix.py (generated from the topology); a cell passes when the read succeeds exactly where the matrix
allows it. Seeded with a DR command whose window starts a little ahead (declarations, and every RA's readings of
its baseline minutes, which have ended: no wait), a private record in every collection and a public record, each
holding values that cannot appear by chance ("leak markers")."""

import hashlib
import json
import threading
import uuid

import pytest
from access_matrix import READ_PATHS, cells, member_peer_org, table
from click.testing import CliRunner
from live_commands import live_command, past_baseline_minutes
from waiting import eventually

from clients.dr import Reading, meter_signatures
from consortium import topology as topology_file
from consortium.policies import collection_writers
from gateway.errors import GatewayError
from network.connections import open_session
from network.crypto import MeterOperator

pytestmark = [pytest.mark.timeout(900)]

TOPOLOGY = topology_file.load()
CELLS = cells(TOPOLOGY)
WINDOW_MINUTES = 1
RESULTS: dict[tuple[str, str, str], bool] = {}


class Seeded:
    """What the fixture wrote, and the byte fragments that would show each private value if it leaked."""

    def __init__(self, network):
        self.network = network
        self.tag = uuid.uuid4().hex[:8]
        self.command = f"acm-{self.tag}"
        self.minutes: list[str] = []  # the readings' minutes: baseline minutes of the command, already ended
        self.records = {}  # collection → (key, value bytes)
        self.public = (f"acm-public-{self.tag}", _canonical({"note": f"PUBLIC-{self.tag}"}))
        self.readings = {}  # RA → {consumer: [wh per minute]}
        self.declared = {}  # RA → {consumer: expected Wh per slot}
        self.sessions = {}

    def session(self, org):
        if org not in self.sessions:
            self.sessions[org] = open_session(self.network, org)
        return self.sessions[org]

    def records_contract(self, org):
        return self.session(org).gateway.get_network(TOPOLOGY.channel).get_contract("gridledger", "records")

    def markers(self, kind) -> list[bytes]:
        if kind.what == "private-record":
            return [json.loads(self.records[kind.collection][1])["secret"].encode()]
        if kind.what == "readings":
            return [
                fragment
                for values in self.readings[kind.owner].values()
                for minute, wh in zip(self.minutes, values, strict=True)
                for fragment in (f'"{minute}":{wh}'.encode(), f'"wh":{wh}'.encode())
            ]
        if kind.what == "declaration":
            return [f'"expected_wh":[{expected}'.encode() for expected in self.declared[kind.owner].values()]
        if kind.what == "public-record":
            return [f"PUBLIC-{self.tag}".encode()]
        if kind.what == "command":
            return [self.command.encode()]
        raise ValueError(f"no markers for {kind.name}")


@pytest.fixture(scope="module")
def seeded(security_network):
    data = Seeded(security_network)
    tso = data.session("TSO")
    command = live_command(
        data.command,
        minutes=WINDOW_MINUTES,
        baseline_minutes=5,
        due_minutes=10,
        target_acs=[o.name for o in TOPOLOGY.organisations if o.role == "ac"],
        price_per_kwh=100,
    )
    tso.dr.submit("issue_command", json.dumps(command))
    data.minutes = past_baseline_minutes(command)[:3]  # ended (all but the latest two): posted at once
    base = 40_001
    meters = MeterOperator(security_network.layout)  # each RA relays readings its consumers' meters signed
    for n, ra in enumerate(o for o in TOPOLOGY.organisations if o.role == "ra"):
        session = data.session(ra.name)
        eventually(lambda: session.dr.evaluate("get_command", data.command))
        consumers = list(ra.consumers)
        data.declared[ra.name] = {c: 7_001 + 10 * n + i for i, c in enumerate(consumers)}
        session.dr.declare(
            data.command,
            {
                "baseline_method": "mean-before",
                "consumers": {
                    c: {"expected_wh": [expected] * WINDOW_MINUTES} for c, expected in data.declared[ra.name].items()
                },
            },
        )
        data.readings[ra.name] = {}
        for i, consumer in enumerate(consumers):
            values = [base + 100 * (3 * n + i) + m for m in range(len(data.minutes))]
            data.readings[ra.name][consumer] = values
            batch = [Reading(ra.name, consumer, minute, wh) for minute, wh in zip(data.minutes, values, strict=True)]
            session.dr.submit(
                "post_readings",
                data.command,
                private=True,
                transient={
                    "readings": json.dumps([r.as_json() for r in batch]),
                    "meter_signatures": json.dumps(meter_signatures(data.command, batch, meters)),
                },
            )
    for collection in TOPOLOGY.collections():
        key = f"acm-{collection}-{data.tag}"
        value = _canonical({"secret": f"SECRET-{collection}-{data.tag}"})
        data.records[collection] = (key, value)
        owner = TOPOLOGY.organisation(collection)
        writers = collection_writers(TOPOLOGY, collection)[0]  # the owner and a second member (its policy)
        data.records_contract(owner.name).submit(
            "put_private_record",
            collection,
            key,
            transient={"record": value},
            endorsing_organizations=[TOPOLOGY.organisation(o).msp_id for o in writers],
        )
    data.records_contract("TSO").submit("put_record", *data.public)

    # Every member peer must hold every value before a refusal can mean anything: ask each, as the TSO.
    records = data.records_contract("TSO")
    for collection, members in TOPOLOGY.collections().items():
        key, value = data.records[collection]
        for member in members:
            msp = TOPOLOGY.organisation(member).msp_id
            eventually(
                lambda: _assert_equal(
                    records.evaluate("get_private_record", collection, key, endorsing_organizations=[msp]), value
                )
            )
            if TOPOLOGY.organisation(collection).role == "ra":
                for consumer, values in data.readings[collection].items():
                    eventually(
                        lambda: _assert_equal(
                            [
                                r["wh"]
                                for r in json.loads(
                                    tso.dr.contract.evaluate(
                                        "get_readings", consumer, data.command, endorsing_organizations=[msp]
                                    )
                                )["readings"]
                            ],
                            values,
                        )
                    )
    for org in TOPOLOGY.org_names:
        eventually(lambda: data.records_contract(org).evaluate("get_record", data.public[0]))
    yield data
    for session in data.sessions.values():
        session.gateway.close()
    for path in READ_PATHS:
        print("\n" + table(TOPOLOGY, RESULTS, path))


def _canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _assert_equal(got, expected):
    assert got == expected, (got, expected)


# How each read path reads one kind of data as one organisation: True when the value came back.


def _evaluate(data: Seeded, org: str, kind, peer_org: str) -> bool:
    msp = [TOPOLOGY.organisation(peer_org).msp_id]
    session = data.session(org)
    try:
        if kind.what == "private-record":
            key, value = data.records[kind.collection]
            return (
                data.records_contract(org).evaluate(
                    "get_private_record", kind.collection, key, endorsing_organizations=msp
                )
                == value
            )
        if kind.what == "public-record":
            return (
                data.records_contract(org).evaluate("get_record", data.public[0], endorsing_organizations=msp)
                == data.public[1]
            )
        if kind.what == "command":
            return (
                json.loads(session.dr.contract.evaluate("get_command", data.command, endorsing_organizations=msp))["id"]
                == data.command
            )
        if kind.what == "readings":
            return all(
                [
                    r["wh"]
                    for r in json.loads(
                        session.dr.contract.evaluate(
                            "get_readings", consumer, data.command, endorsing_organizations=msp
                        )
                    )["readings"]
                ]
                == values
                for consumer, values in data.readings[kind.owner].items()
            )
        if kind.what == "declaration":
            shown = json.loads(
                session.dr.contract.evaluate("get_declaration", data.command, kind.owner, endorsing_organizations=msp)
            )
            return shown["detail"] == {
                c: {"expected_wh": [e] * WINDOW_MINUTES} for c, e in data.declared[kind.owner].items()
            }
        if kind.what == "figures":
            shown = json.loads(
                session.dr.contract.evaluate("get_aggregates", data.command, kind.owner, endorsing_organizations=msp)
            )
            return [a["org"] for a in shown["aggregates"]] == [kind.owner]
    except GatewayError as refused:
        message = str(refused)
        # A refusal is a clear chaincode or peer error, never a stack trace.
        assert message.startswith("failed to ") and "Traceback" not in message, message
        return False
    raise ValueError(kind.name)


def _hash(data: Seeded, org: str, kind) -> bool:
    key, value = data.records[kind.collection]
    try:
        digest = data.records_contract(org).evaluate(
            "get_private_record_hash", kind.collection, key, endorsing_organizations=[TOPOLOGY.organisation(org).msp_id]
        )
    except GatewayError:
        return False
    return digest.decode() == hashlib.sha256(value).hexdigest()


def _history(data: Seeded, org: str, kind) -> bool:
    key = data.records[kind.collection][0] if kind.private else data.public[0]
    history = json.loads(data.records_contract(org).evaluate("get_history", key))
    markers = data.markers(kind)
    return any(m in json.dumps(history, separators=(",", ":")).encode() for m in markers)


_per_org_cache: dict[tuple[str, str], bytes] = {}
_cache_lock = threading.Lock()


def _events_bytes(data: Seeded, org: str) -> bytes:
    """Every chaincode event payload `org` can read, from block 0 to the seeding's last block."""
    with _cache_lock:
        if (org, "events") not in _per_org_cache:
            session = data.session(org)
            events = session.gateway.get_network(TOPOLOGY.channel).get_chaincode_events("gridledger", start_block=0)
            timer = threading.Timer(30.0, events.close)
            timer.start()
            payloads = []
            try:
                for event in events:
                    payloads.append(event.event_name.encode() + b" " + event.payload)
                    if event.event_name == "RecordPut" and data.public[0].encode() in event.payload:
                        break
            finally:
                timer.cancel()
                events.close()
            assert payloads and data.public[0].encode() in payloads[-1], f"{org} did not see the seeding's events"
            _per_org_cache[(org, "events")] = b"\n".join(payloads)
        return _per_org_cache[(org, "events")]


def _blocks_bytes(data: Seeded, org: str, private: bool) -> bytes:
    """All blocks as `org` receives them (raw), or with private: the private values delivered beside them by the
    TSO's peer, which holds every collection."""
    from gateway import grpc_channel_for
    from gateway.blocks import fetch_blocks

    path = "private-delivery" if private else "blocks"
    with _cache_lock:
        if (org, path) not in _per_org_cache:
            network = data.network
            peer = network.topology.peer_of("TSO" if private else org)
            channel = grpc_channel_for(peer.address, network.layout.node_dir(peer) / "tls" / "ca.crt")
            blocks = list(fetch_blocks(data.session(org).gateway, TOPOLOGY.channel, channel=channel, private=private))
            if private:
                found = b"\n".join(
                    w.key.encode() + b"=" + w.value
                    for b in blocks
                    for sets in b.private_data.values()
                    for namespace, _, _, writes in sets
                    if namespace == "gridledger"
                    for w in writes
                )
            else:
                found = b"\n".join(b.raw for b in blocks)
            _per_org_cache[(org, path)] = found
        return _per_org_cache[(org, path)]


def _cli(data: Seeded, org: str, kind) -> bool:
    from cli import main

    if kind.what == "figures":
        args = ["dr", "aggregates", "--as", org, "--command", data.command, "--org", kind.owner, "--json"]
    else:
        args = ["dr", "command", "list", "--as", org, "--json"]
    result = CliRunner().invoke(main, [*args, "--run-dir", str(data.network.root)])
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    if result.exit_code != 0:
        assert result.exit_code == 1 and result.stderr.startswith("error: failed to "), output
        return False
    shown = json.loads(result.stdout)
    if kind.what == "figures":
        return [a["org"] for a in shown["aggregates"]] == [kind.owner]
    return data.command in [c["id"] for c in shown]


def read(data: Seeded, cell) -> bool:
    kind, org, path = cell.kind, cell.org, cell.path
    if path == "evaluate":
        return _evaluate(data, org, kind, org)
    if path == "evaluate-member-peer":
        return _evaluate(data, org, kind, member_peer_org(TOPOLOGY, org, kind))
    if path == "hash":
        return _hash(data, org, kind)
    if path == "history":
        return _history(data, org, kind)
    if path == "events":
        # A public record's event names its key and hash; its value stays in the block.
        markers = [data.public[0].encode()] if kind.what == "public-record" else data.markers(kind)
        return any(m in _events_bytes(data, org) for m in markers)
    if path in ("blocks", "private-delivery"):
        return any(m in _blocks_bytes(data, org, private=path == "private-delivery") for m in data.markers(kind))
    if path == "cli":
        return _cli(data, org, kind)
    raise ValueError(path)


@pytest.mark.parametrize("cell", [c for c in CELLS if c.path not in ("web", "json-api")], ids=lambda c: c.id)
def test_only_the_allowed_cells_succeed(seeded, cell):
    succeeded = read(seeded, cell)
    RESULTS[(cell.path, cell.org, cell.kind.name)] = succeeded
    assert succeeded == cell.allowed, (
        f"{cell.org} {'could not read' if cell.allowed else 'READ'} {cell.kind.name} through {cell.path}"
    )


# The web and JSON API rows: tests/unit/test_web_access_matrix.py asks the pages and routes for the same cells.
