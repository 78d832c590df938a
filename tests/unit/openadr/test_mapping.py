"""The OpenADR mapping rules: who a VTN commands, which RA a VEN's certificate speaks for, a command as a
schema-valid OpenADR event, what an opt-in means beside the declaration, telemetry values as whole-Wh figures."""

import math
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from openleadr.messaging import create_message, parse_message, validate_xml_schema

from chaincode.contracts.dr_inputs import MAX_READING_WH
from consortium import topology as topology_file
from openadr import mapping, vtn_port
from openadr.mapping import RegistrationRefused

TOPOLOGY = topology_file.load()
COMMAND = {
    "id": "7",
    "start": "2026-12-01T10:00",
    "end": "2026-12-01T10:29",
    "requested_kw": 50,
    "target_acs": ["AC1"],
    "price_per_kwh": 2500,
    "granularity_minutes": 10,
    "baseline_minutes": 30,
}


def test_the_tso_commands_every_ra_an_ac_its_own_and_an_ra_nobody():
    assert [ra.name for ra in mapping.served_ras(TOPOLOGY, "TSO")] == ["RA1", "RA2", "RA3"]
    assert [ra.name for ra in mapping.served_ras(TOPOLOGY, "AC1")] == ["RA1", "RA2"]
    assert [ra.name for ra in mapping.served_ras(TOPOLOGY, "AC2")] == ["RA3"]
    with pytest.raises(ValueError, match="only the TSO and the ACs"):
        mapping.served_ras(TOPOLOGY, "RA1")


def test_each_vtn_listens_on_its_own_port_of_its_peers_block():
    ports = {org: vtn_port(TOPOLOGY, org) for org in ("TSO", "AC1", "AC2")}
    assert len(set(ports.values())) == 3 and all(p < 32768 for p in ports.values())
    assert ports["TSO"] == TOPOLOGY.peer_of("TSO").listen_port + 6


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificate(issuer: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name("ven"))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


ISSUERS = {"RA1": _name("tlsca.ra1.grid.local"), "RA2": _name("tlsca.ra2.grid.local")}


def test_a_certificate_speaks_for_the_ra_whose_ca_issued_it_only():
    assert mapping.ra_of_certificate(_certificate("tlsca.ra1.grid.local"), ISSUERS) == "RA1"
    assert mapping.ra_of_certificate(_certificate("tlsca.tso.grid.local"), ISSUERS) is None
    assert mapping.registered_ra("RA1", "RA1", ["RA1", "RA2"]) == "RA1"


@pytest.mark.parametrize(
    ("ven_name", "certificate_ra", "served", "why"),
    [
        ("RA2", "RA1", ["RA1", "RA2"], "with RA1's certificate cannot register as 'RA2'"),
        ("RA1", None, ["RA1", "RA2"], "not issued by any served RA's CA"),
        ("RA3", "RA3", ["RA1", "RA2"], "does not command RA3"),
    ],
)
def test_a_ven_cannot_register_for_another_ra(ven_name, certificate_ra, served, why):
    with pytest.raises(RegistrationRefused, match=why):
        mapping.registered_ra(ven_name, certificate_ra, served)


def test_a_command_becomes_one_simple_interval_per_slot_from_its_jst_start():
    event = mapping.event_of_command(COMMAND, "ra1-ven-1")
    assert event.event_descriptor.event_id == "dr-7" and mapping.command_of_event("dr-7") == "7"
    assert event.active_period.dtstart == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 10:00 JST
    assert event.active_period.duration == timedelta(minutes=30)
    intervals = event.event_signals[0].intervals
    assert [(i.dtstart.minute, i.duration, i.signal_payload) for i in intervals] == [
        (0, timedelta(minutes=10), 1),
        (10, timedelta(minutes=10), 1),
        (20, timedelta(minutes=10), 1),
    ]
    assert event.response_required == "always" and event.targets[0].ven_id == "ra1-ven-1"


def test_the_event_is_a_schema_valid_openadr_message_a_ven_reads_back():
    message = create_message(
        "oadrDistributeEvent",
        request_id="r1",
        vtn_id="GRIDLEDGER-TSO",
        events=[mapping.event_of_command(COMMAND, "ra1-ven-1")],
        response={"response_code": 200, "response_description": "OK", "request_id": "r1"},
    )
    validate_xml_schema(message.encode())
    message_type, payload = parse_message(message)
    assert message_type == "oadrDistributeEvent"
    event = payload["events"][0]
    assert event["event_descriptor"]["event_id"] == "dr-7"
    assert event["event_signals"][0]["signal_name"] == "SIMPLE"
    assert "2500 hundredths of a yen per kWh" in event["event_descriptor"]["vtn_comment"]


def test_events_of_other_vtns_name_no_command():
    assert mapping.command_of_event("some-other-event") is None


@pytest.mark.parametrize(
    ("opt_type", "declared", "status"),
    [
        ("optIn", True, "confirmed"),
        ("optIn", False, "awaiting declaration"),
        ("optOut", True, "conflict: opted out but declared"),
        ("optOut", False, "opted out"),
    ],
)
def test_an_opt_in_counts_only_beside_the_ras_own_declaration(opt_type, declared, status):
    assert mapping.opt_status(opt_type, declared) == status


def test_an_unknown_opt_type_is_refused():
    with pytest.raises(ValueError, match="optIn or optOut"):
        mapping.opt_status("maybe", True)


def test_telemetry_becomes_whole_wh_per_jst_minute():
    values = [
        (datetime(2026, 12, 1, 1, 1, 30, tzinfo=UTC), 0.25),  # 10:01 JST, 0.25 kWh
        (datetime(2026, 12, 1, 1, 0), 0.5),  # naive: UTC, as on the wire
    ]
    readings, refused = mapping.readings_of_report("RA1", "C1", values, "k")
    assert [(r.ra, r.consumer, r.minute, r.wh) for r in readings] == [
        ("RA1", "C1", "2026-12-01T10:00", 500),
        ("RA1", "C1", "2026-12-01T10:01", 250),
    ]
    assert refused == []


@pytest.mark.parametrize(
    ("value", "scale", "why"),
    [
        (-1, "none", "between 0 and"),
        (MAX_READING_WH + 1, "none", "between 0 and"),
        (math.nan, "none", "finite number"),
        (math.inf, "none", "finite number"),
        ("12", "none", "finite number"),
        (True, "none", "finite number"),
        (12.5, "none", "whole Wh"),
        (1, "G", "scale 'G'"),
    ],
)
def test_telemetry_that_is_not_a_minutes_energy_is_refused_not_rounded(value, scale, why):
    readings, refused = mapping.readings_of_report(
        "RA1", "C1", [(datetime(2026, 12, 1, 1, 0, tzinfo=UTC), value)], scale
    )
    assert readings == [] and len(refused) == 1 and why in refused[0].reason


def test_a_minute_reported_twice_keeps_its_first_value():
    minute = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    readings, refused = mapping.readings_of_report("RA1", "C1", [(minute, 40), (minute, 40), (minute, 47)])
    assert [r.wh for r in readings] == [40]
    assert [r.reason for r in refused] == ["minute 2026-12-01T10:00 was already reported"]


def test_a_figure_belongs_to_every_command_of_the_ras_ac_that_accepts_its_minute():
    ra1, ra3 = TOPOLOGY.organisation("RA1"), TOPOLOGY.organisation("RA3")
    later = {**COMMAND, "id": "8", "start": "2026-12-01T10:40", "end": "2026-12-01T10:59"}
    commands = [COMMAND, later]
    assert mapping.commands_covering(commands, ra1, "2026-12-01T09:29") == []
    assert mapping.commands_covering(commands, ra1, "2026-12-01T09:30") == ["7"]  # first baseline minute
    assert mapping.commands_covering(commands, ra1, "2026-12-01T10:29") == ["7", "8"]  # 8's baseline
    assert mapping.commands_covering(commands, ra1, "2026-12-01T11:00") == []
    assert mapping.commands_covering(commands, ra3, "2026-12-01T10:00") == []  # AC2 is not targeted


def test_only_commands_that_have_not_ended_are_sent():
    assert mapping.active(COMMAND, datetime(2026, 12, 1, 1, 29, 59, tzinfo=UTC))
    assert not mapping.active(COMMAND, datetime(2026, 12, 1, 1, 30, tzinfo=UTC))
