"""The seed's worked examples, which unit, integration, browser and benchmark suites all check against.

Figure 6: command 1, 2021-01-14 00:00-00:04 JST, targeting AC1 and AC2; C1 (RA1) and C2 (RA2) under AC1 sum to 4, 3,
5, 10 and 2 kWh per minute; C3 (RA3) is AC2's. Figure 7: who sees which consumer and which figures, written out by
hand (never derived from the contract's own rules, so a test of those rules can fail). `dr_command()` builds other
commands of the same shape.

The endorsers hold DR steps to real time (chaincode.contracts.dr_time): suites on a clock they set replay figure 6 at
its own dates, at the moments below (ISSUED, ENDED, DUE), with meters whose certificates are valid then
(SEED_METERS); suites on the real network replay it at a live window, its labels moved by `shifted()`."""

import json
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from meter_keys import OPERATOR_CA, Meters

from chaincode.shim.identity import ATTRIBUTES_OID
from chaincode.shim.testing import private_key_pem
from clients.dr import Meter
from consortium.units import JST, minute_index, minute_label
from gateway.signing import Signer

WINDOW = [f"2021-01-14T00:0{m}" for m in range(5)]
BEFORE = ["2021-01-13T23:57", "2021-01-13T23:58", "2021-01-13T23:59"]
C1_WH = [1000, 2000, 2000, 6000, 1000]
C2_WH = [3000, 1000, 3000, 4000, 1000]
C3_WH = [500, 500, 700, 700, 900]
READINGS = {"C1": ("RA1", C1_WH), "C2": ("RA2", C2_WH), "C3": ("RA3", C3_WH)}
AC1_WH = [4000, 3000, 5000, 10000, 2000]
AC1_KWH = ["4.000", "3.000", "5.000", "10.000", "2.000"]


def dr_command(command_id: str, start: str, end: str, **fields) -> dict:
    """A DR command as the TSO issues it, to both ACs at 25 yen/kWh unless `fields` say otherwise."""
    return {
        "id": command_id,
        "start": start,
        "end": end,
        "target_acs": ["AC1", "AC2"],
        "price_per_kwh": 2500,
        **fields,
    }


COMMAND = dr_command("1", WINDOW[0], WINDOW[-1], requested_kw=600, baseline_minutes=3)

# When each step of figure 6 happens: the command is issued and declared before its window, the readings posted once
# every minute of it has ended, the command settled when its readings are due (the topology's default 30 minutes).
ISSUED = datetime(2021, 1, 13, 23, 50, tzinfo=JST)
ENDED = datetime(2021, 1, 14, 0, 5, tzinfo=JST)
DUE = datetime(2021, 1, 14, 0, 35, tzinfo=JST)


def shifted(labels: list[str], start: str) -> list[str]:
    """Figure 6's minute labels (WINDOW, BEFORE) moved so that its window starts at minute `start`."""
    offset = minute_index(start) - minute_index(WINDOW[0])
    return [minute_label(minute_index(label) + offset) for label in labels]


class SeedDatedOperator:
    """The test meter operator's CA (tests/meter_keys.py), issuing meter certificates valid from before the seed's
    dates: an endorser checks a relayed reading's certificate at the transaction's time, 2021 in figure 6."""

    valid_from = datetime(2021, 1, 1, tzinfo=UTC)

    def meter(self, consumer: str, *, named: str | None = None, valid_for: timedelta | None = None) -> Meter:
        """As meter_keys.CertificateAuthority.meter, but valid from `valid_from` for a year from now, unless
        `valid_for` asks for the operator's own short certificate."""
        if valid_for is not None:
            return OPERATOR_CA.meter(consumer, named=named, valid_for=valid_for)
        key = ec.generate_private_key(ec.SECP256R1())
        attributes = json.dumps({"attrs": {"role": "meter", "consumer": named or consumer}}).encode()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"meter-{consumer}")]))
            .issuer_name(OPERATOR_CA.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.valid_from)
            .not_valid_after(datetime.now(UTC) + timedelta(days=365))
            .add_extension(x509.UnrecognizedExtension(ATTRIBUTES_OID, attributes), critical=False)
            .sign(OPERATOR_CA.key, hashes.SHA256())
        )
        return Meter(consumer, certificate.public_bytes(serialization.Encoding.PEM), Signer(private_key_pem(key)))


SEED_METERS = Meters(SeedDatedOperator())  # checked by meter_keys.OPERATOR_AUTHORITY, like the operator's own


# Figure 7: the consumers and the aggregate figures each organisation may see.
OWNER = {"C1": "RA1", "C2": "RA2", "C3": "RA3"}
SEES = {"TSO": {"C1", "C2", "C3"}, "AC1": {"C1", "C2"}, "AC2": {"C3"}, "RA1": {"C1"}, "RA2": {"C2"}, "RA3": {"C3"}}
FIGURES = {
    "TSO": ["AC1", "RA1", "RA2", "AC2", "RA3"],
    "AC1": ["AC1", "RA1", "RA2"],
    "AC2": ["AC2", "RA3"],
    "RA1": ["RA1"],
    "RA2": ["RA2"],
    "RA3": ["RA3"],
}
