"""Meter attestation in the dr contract: an RA relays its consumers' readings but cannot make them up, alter them,
sign them with another meter or a meter certificate of its own; a meter certificate counts only when the meter
operator issued it, in the market's reads too."""

import base64
import json
from datetime import timedelta

import pytest
from meter_keys import OPERATOR_AUTHORITY, CertificateAuthority, Meters, as_readings, signed_transient
from seed_examples import C1_WH, COMMAND, ENDED, ISSUED, SEED_METERS, WINDOW

from chaincode.contracts.meter_attestation import reading_statement
from chaincode.shim.testing import make_identity
from clients.dr import meter_signatures
from consortium import topology as topology_file

TOPOLOGY = topology_file.load()
USERS = {org: make_identity(f"{org}MSP", f"User1@{org.lower()}") for org in TOPOLOGY.org_names}


def readings(consumer, values, minutes=WINDOW):
    return [{"consumer": consumer, "minute": m, "wh": wh} for m, wh in zip(minutes, values, strict=False)]


@pytest.fixture
def ledger(new_ledger):
    """Command 1, RA1 declared for C1 and C4; its window has ended (figure 6's moments)."""
    ledger = new_ledger("dr", now=ISSUED)
    ledger.chaincode.contracts["dr"].meter_authority = OPERATOR_AUTHORITY
    ledger.ok(USERS["TSO"], "issue_command", json.dumps(COMMAND))
    declaration = {"baseline_method": "mean-before", "consumers": {c: {"expected_wh": [100] * 5} for c in ("C1", "C4")}}
    ledger.ok(USERS["RA1"], "declare", "1", transient={"declaration": json.dumps(declaration)})
    ledger.now = ENDED
    return ledger


def relay(ledger, transient):
    return ledger.refused(USERS["RA1"], "post_readings", "1", transient=transient)


def test_an_ra_relays_readings_its_meters_signed(ledger):
    batch = readings("C1", C1_WH) + readings("C4", [7] * 5)
    assert ledger.ok(USERS["RA1"], "post_readings", "1", transient=signed_transient("1", batch, SEED_METERS))
    got = ledger.ok(USERS["TSO"], "get_readings", "C1", "1", commit=False)
    assert [r["wh"] for r in got["readings"]] == C1_WH


def test_readings_without_a_meter_signature_are_refused(ledger):
    batch = readings("C1", C1_WH)
    assert "the readings of C1 carry no meter signature" in relay(ledger, {"readings": json.dumps(batch)})
    signed = meter_signatures("1", as_readings(batch + readings("C4", [1])), SEED_METERS)
    del signed["C4"]
    message = relay(ledger, signed_transient("1", batch + readings("C4", [1]), SEED_METERS, signed))
    assert "the readings of C4 carry no meter signature" in message


def test_readings_altered_after_signing_are_refused(ledger):
    batch = readings("C1", C1_WH)
    signed = meter_signatures("1", as_readings(batch), SEED_METERS)
    inflated = readings("C1", [wh * 10 for wh in C1_WH])
    message = relay(ledger, signed_transient("1", inflated, SEED_METERS, signed))
    assert "the meter signature over C1's readings does not verify" in message
    # Dropping a reading the meter signed, or signing for another command, is altering too.
    assert "does not verify" in relay(ledger, signed_transient("1", batch[:-1], SEED_METERS, signed))
    other_command = meter_signatures("2", as_readings(batch), SEED_METERS)
    assert "does not verify" in relay(ledger, signed_transient("1", batch, SEED_METERS, other_command))


def test_a_forged_signature_is_refused(ledger):
    batch = readings("C1", C1_WH)
    # The real meter's certificate, a signature by some other key.
    real = SEED_METERS.meter("C1")
    impostor = SEED_METERS.authority.meter("C1")
    statement = reading_statement("1", "C1", [(r["minute"], r["wh"]) for r in batch])
    forged = {
        "C1": {
            "certificate": real.certificate.decode(),
            "signature": base64.b64encode(impostor.signer.sign(statement)).decode(),
        }
    }
    assert "does not verify" in relay(ledger, signed_transient("1", batch, SEED_METERS, forged))
    # A meter certificate from a CA the RA made up: the signature matches it, the issuer is not the operator.
    made_up = Meters(CertificateAuthority("ca.tso.grid.local"))
    message = relay(ledger, signed_transient("1", batch, made_up))
    assert "the meter certificate was not issued by the meter operator's CA" in message


def test_readings_signed_by_another_consumers_meter_are_refused(ledger):
    batch = readings("C1", C1_WH)
    statement = reading_statement("1", "C1", [(r["minute"], r["wh"]) for r in batch])
    c4 = SEED_METERS.meter("C4")
    signed = {
        "C1": {
            "certificate": c4.certificate.decode(),
            "signature": base64.b64encode(c4.signer.sign(statement)).decode(),
        }
    }
    assert "the readings of C1 are signed by the meter of C4, not by C1's own" in relay(
        ledger, signed_transient("1", batch, SEED_METERS, signed)
    )


def test_an_expired_meter_certificate_is_refused(ledger):
    expired = SEED_METERS.authority.meter("C1", valid_for=timedelta(hours=1))
    batch = readings("C1", C1_WH)
    signed = {"C1": expired.signature_over("1", as_readings(batch))}
    assert "the certificate of C1's meter is not valid at" in relay(
        ledger, signed_transient("1", batch, SEED_METERS, signed)
    )


@pytest.mark.parametrize(
    "signatures, message",
    [
        ({"C1": "x"}, "must be an object with certificate and signature"),
        ({"C1": {"certificate": "x", "signature": "%%"}}, "the meter signature of C1 is not base64"),
        ({"C1": {"certificate": "not a certificate", "signature": ""}}, "is not a PEM X.509 certificate"),
        ({"C1": {"certificate": 1, "signature": ""}}, "certificate (PEM) and signature (base64) are text"),
    ],
)
def test_malformed_meter_signatures_are_refused(ledger, signatures, message):
    batch = readings("C1", C1_WH)
    assert message in relay(ledger, signed_transient("1", batch, SEED_METERS, signatures))


def test_a_signature_for_a_consumer_outside_the_batch_is_refused(ledger):
    batch = readings("C1", C1_WH)
    signed = meter_signatures("1", as_readings(batch + readings("C4", [1])), SEED_METERS)
    message = relay(ledger, signed_transient("1", batch, SEED_METERS, signed))
    assert "meter signatures for consumers without readings in the batch: C4" in message


def test_an_endorser_without_the_operators_ca_checks_no_meter_and_accepts_none(ledger):
    ledger.chaincode.contracts["dr"].meter_authority = None
    message = relay(ledger, signed_transient("1", readings("C1", C1_WH), SEED_METERS))
    assert "this endorser does not know the meter operator's CA" in message


def test_a_meter_posting_its_own_readings_needs_no_relayed_signature(ledger):
    meter = make_identity("TSOMSP", "meter-C1", {"role": "meter", "consumer": "C1"})
    summary = ledger.ok(meter, "post_readings", "1", transient={"readings": json.dumps(readings("C1", C1_WH))})
    assert summary["ra"] == "RA1" and summary["readings"] == 5


@pytest.mark.parametrize("issuer", ["RA1MSP", "RA2MSP", "AC1MSP"])
def test_a_meter_certificate_not_issued_by_the_operator_is_refused_everywhere(new_ledger, issuer):
    """RA1 issuing itself a meter certificate for RA2's consumer C2 (or its own C1) gets nowhere: not its readings,
    not its positions in the market."""
    dr = new_ledger("dr")
    for consumer in ("C1", "C2"):
        forged = make_identity(issuer, f"meter-{consumer}", {"role": "meter", "consumer": consumer})
        for contract, function, args in (
            ("dr", "get_readings", (consumer, "1")),
            ("dr", "post_readings", ("1",)),
            ("market", "get_positions", (consumer,)),
            (
                "market",
                "place_orders",
                (json.dumps([{"participant": consumer, "side": "buy", "price": 20, "quantity": 1}]),),
            ),
        ):
            message = dr.refused(forged, function, *args, contract=contract, commit=False)
            assert "a meter certificate must be issued by the meter operator TSO" in message, (function, message)
