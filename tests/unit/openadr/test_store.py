"""The VTN's records: one VEN per certificate, bound to one RA; the last answer per command and VEN."""

from clients.dr import Reading
from openadr.store import VtnStore


def test_a_certificate_registering_again_keeps_its_ven_id_and_another_gets_its_own(tmp_path):
    store = VtnStore(tmp_path / "vtn.sqlite")
    first = store.register("RA1", "RA1", "AA:BB")
    assert store.register("RA1", "RA1", "AA:BB") == first
    second = store.register("RA1", "RA1", "CC:DD")
    assert second[0] != first[0] and second[0].startswith("ra1-ven-")
    assert store.ven(first[0]) == {
        "ven_id": first[0],
        "ra": "RA1",
        "ven_name": "RA1",
        "fingerprint": "AA:BB",
        "registration_id": first[1],
    }
    store.cancel(first[0])
    assert store.ven(first[0]) is None and [v["ven_id"] for v in store.vens()] == [second[0]]


def test_the_last_answer_per_command_and_ven_is_kept(tmp_path):
    store = VtnStore(tmp_path / "vtn.sqlite")
    store.record_opt("1", "ra1-ven-x", "RA1", "optIn", "awaiting declaration")
    store.record_opt("1", "ra1-ven-x", "RA1", "optIn", "confirmed")
    store.record_opt("2", "ra1-ven-x", "RA1", "optOut", "opted out")
    assert [(o["command"], o["status"]) for o in store.opts()] == [("1", "confirmed"), ("2", "opted out")]
    assert [o["command"] for o in store.opts("2")] == ["2"]


def test_telemetry_keeps_the_first_value_of_a_consumer_minute(tmp_path):
    store = VtnStore(tmp_path / "vtn.sqlite")
    assert store.record_telemetry("1", "v", [Reading("RA1", "C1", "2026-12-01T10:00", 40)]) == 1
    assert store.record_telemetry("1", "v", [Reading("RA1", "C1", "2026-12-01T10:00", 47)]) == 0
