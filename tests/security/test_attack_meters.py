"""A dishonest RA against meter attestation, on the real network. Readings count because the consumer's meter
signed them: the meter operator's (the TSO's) CA issues every meter certificate, and every endorser checks each
relayed consumer's readings against its meter's certificate and signature (chaincode.contracts.meter_attestation,
the CA taken from the channel configuration's TSOMSP). Each attack below is refused at endorsement by the honest
endorsers' chaincode (EndorseError, the contract's own "failed to post readings: …"), so nothing is ordered:

- readings without a meter signature;                          "… carry no meter signature"
- readings altered after the meter signed them;                 "… does not verify"
- a signature by another key over the real meter's certificate; "… does not verify"
- a meter certificate from a CA the RA made up;                 "… not issued by the meter operator's CA"
- C1's readings signed by C4's meter;                            "… signed by the meter of C4, not by C1's own"
- a "meter" certificate RA1 issued itself naming RA2's C2: as a relayed signature it is not the operator's; as a
  creator Fabric accepts it (RA1's CA issued it), and every contract transaction that trusts a meter identity
  refuses it ("a meter certificate must be issued by the meter operator TSO, not by RA1"): C2's readings, posting,
  the market's positions and orders.

An honest relayed batch and a meter posting under its own identity (a TSOMSP member) commit as before.
"""

import base64
import json
import uuid

import pytest
from live_commands import live_command, past_baseline_minutes
from meter_identities import meter_session, ra_issued_meter, ra_issued_session, relayed
from waiting import eventually

from chaincode.contracts.meter_attestation import reading_statement
from clients.dr import Reading, meter_signatures, uniform_declaration
from gateway.errors import EndorseError, GatewayError
from network.connections import open_session
from network.crypto import MeterOperator

pytestmark = [pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def issued(security_network):
    """A command for AC1 (RA1 declared C1 and C4; RA2 declared C2) whose window starts a little ahead, and RA1's DR
    client with the operator's meters. The readings below are for its baseline minutes, which have ended: each
    attack is refused for what it forges, never for its timing."""
    tso, ra2 = open_session(security_network, "TSO"), open_session(security_network, "RA2")
    ra1 = open_session(security_network, "RA1")
    record = tso.dr.issue(
        live_command(
            f"meters-{uuid.uuid4().hex[:8]}",
            minutes=1,
            baseline_minutes=6,
            due_minutes=10,
            target_acs=["AC1"],
            price_per_kwh=100,
        )
    )
    for session, consumers in ((ra1, ["C1", "C4"]), (ra2, ["C2"])):
        session.dr.wait_for_command(record["id"])
        session.dr.declare(record["id"], uniform_declaration(record, consumers, 10, None))
    return record


@pytest.fixture(scope="module")
def command(issued) -> str:
    return issued["id"]


@pytest.fixture(scope="module")
def minutes(issued) -> list[str]:
    """Four of the command's minutes whose readings may be posted now."""
    return past_baseline_minutes(issued)[:4]  # all but the latest two of six have ended


@pytest.fixture(scope="module")
def meters(security_network):
    return MeterOperator(security_network.layout)


def batch(consumer: str, wh: int, minutes: list[str], ra: str = "RA1") -> list[Reading]:
    return [Reading(ra, consumer, minute, wh) for minute in minutes]


def refusal(session, command_id: str, transient: dict) -> EndorseError:
    with pytest.raises(EndorseError) as refused:
        session.dr.submit("post_readings", command_id, transient=transient, private=True)
    assert refused.value.refused, refused.value  # the chaincode refused it, not the network
    return refused.value


def recorded(network, org: str, command_id: str, consumer: str) -> dict[str, int]:
    shown = open_session(network, org).dr.readings(consumer, command_id)
    return {r["minute"]: r["wh"] for r in shown["readings"]}


def holds(network, org: str, command_id: str, consumer: str, expected: dict[str, int]) -> None:
    assert recorded(network, org, command_id, consumer) == expected


def test_readings_without_a_meter_signature_are_refused(security_network, command, minutes):
    ra1 = open_session(security_network, "RA1")
    unsigned = {"readings": json.dumps([r.as_json() for r in batch("C1", 50, minutes[:2])])}
    assert "failed to post readings: the readings of C1 carry no meter signature" in str(
        refusal(ra1, command, unsigned)
    )


def test_readings_altered_after_signing_are_refused(security_network, command, meters, minutes):
    ra1 = open_session(security_network, "RA1")
    signed = meter_signatures(command, batch("C1", 50, minutes[:2]), meters)
    error = refusal(
        ra1, command, relayed(batch("C1", 5000, minutes[:2]), signed)
    )  # the meter said 50 Wh, the RA says 5000
    assert "the meter signature over C1's readings does not verify" in str(error)


def test_forged_meter_signatures_are_refused(security_network, command, meters, minutes):
    ra1 = open_session(security_network, "RA1")
    readings = batch("C1", 50, minutes[:2])
    statement = reading_statement(command, "C1", [(r.minute, r.wh) for r in readings])
    other_key = ra_issued_meter(security_network, "RA1", "C1").signer
    forged = {
        "C1": {
            "certificate": meters.meter("C1").certificate.decode(),
            "signature": base64.b64encode(other_key.sign(statement)).decode(),
        }
    }
    assert "does not verify" in str(refusal(ra1, command, relayed(readings, forged)))
    # Its own key and certificate, from RA1's own CA: the certificate is not the meter operator's.
    own = {"C1": ra_issued_meter(security_network, "RA1", "C1").signature_over(command, readings)}
    assert "the meter certificate was not issued by the meter operator's CA" in str(
        refusal(ra1, command, relayed(readings, own))
    )


def test_readings_signed_by_another_consumers_meter_are_refused(security_network, command, meters, minutes):
    ra1 = open_session(security_network, "RA1")
    readings = batch("C1", 50, minutes[:2])
    c4 = meters.meter("C4")
    statement = reading_statement(command, "C1", [(r.minute, r.wh) for r in readings])
    signature = base64.b64encode(c4.signer.sign(statement)).decode()
    signed = {"C1": {"certificate": c4.certificate.decode(), "signature": signature}}
    assert "the readings of C1 are signed by the meter of C4, not by C1's own" in str(
        refusal(ra1, command, relayed(readings, signed))
    )


def test_an_ra_issued_meter_certificate_naming_another_ras_consumer_is_refused_everywhere(
    security_network, command, minutes
):
    forged = ra_issued_session(security_network, "RA1", "C2")
    expected = "a meter certificate must be issued by the meter operator TSO, not by RA1"
    attempts = {
        "dr readings": lambda: forged.dr.readings("C2", command),
        "dr post": lambda: forged.dr.submit(
            "post_readings",
            command,
            transient={"readings": json.dumps([r.as_json() for r in batch("C2", 9, minutes[:2])])},
            private=True,
        ),
        "market positions": lambda: forged.market.positions("C2"),
    }
    for what, attempt in attempts.items():
        with pytest.raises(GatewayError) as refused:
            attempt()
        assert expected in str(refused.value), (what, str(refused.value))
        assert refused.value.refused, what


def test_honest_relayed_readings_and_a_meters_own_commit(security_network, command, meters, minutes):
    ra1 = open_session(security_network, "RA1")
    ra1.dr.meters = meters
    ra1.dr.post_readings(command, batch("C1", 50, minutes[:2]))
    meter = meter_session(security_network, "C4")
    assert meter.dr.post_readings(command, batch("C4", 60, minutes[2:]))["ra"] == "RA1"
    for org in ("TSO", "AC1", "RA1"):
        eventually(lambda org=org: holds(security_network, org, command, "C1", dict.fromkeys(minutes[:2], 50)))
        eventually(lambda org=org: holds(security_network, org, command, "C4", dict.fromkeys(minutes[2:], 60)))
    # Nothing of the refused batches above reached the ledger.
    assert recorded(security_network, "TSO", command, "C2") == {}
