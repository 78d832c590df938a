"""The seed's worked examples, which unit, integration, browser and benchmark suites all check against.

Figure 6: command 1, 2021-01-14 00:00-00:04 JST, targeting AC1 and AC2; C1 (RA1) and C2 (RA2) under AC1 sum to 4, 3,
5, 10 and 2 kWh per minute; C3 (RA3) is AC2's. Figure 7: who sees which consumer and which figures, written out by
hand (never derived from the contract's own rules, so a test of those rules can fail). `dr_command()` builds other
commands of the same shape."""

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
