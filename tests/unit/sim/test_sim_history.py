"""The history simulator: 48 whole-Wh values a consumer-day, the same on every run, lower on weekends and holidays,
posted in batches of whole consumers per RA."""

from datetime import date

from clients.dr_units import HistoryDay, history_batches
from consortium import topology as topology_file
from sim.history import fleet_history
from sim.meters import MeterFleet

TOPOLOGY = topology_file.load()


def test_five_weeks_of_48_values_a_day_repeat_exactly_and_dip_on_holidays():
    fleet = MeterFleet.for_topology(TOPOLOGY, 4, seed=3)
    days = fleet_history(fleet, date(2026, 11, 25), 35)
    assert len(days) == 4 * 35 and {len(d.wh) for d in days} == {48}
    assert all(isinstance(wh, int) and wh >= 0 for d in days for wh in d.wh)
    assert days == fleet_history(MeterFleet.for_topology(TOPOLOGY, 4, seed=3), date(2026, 11, 25), 35)
    assert days[0].day == "2026-10-21" and days[34].day == "2026-11-24"
    c1 = {d.day: sum(d.wh) for d in days if d.consumer == "C1"}
    weekdays = [c1[d] for d in ("2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20")]
    assert c1["2026-11-23"] < min(weekdays)  # 勤労感謝の日, a Monday


def test_batches_keep_a_consumers_days_together_within_one_ra():
    days = [
        HistoryDay(ra, f"{ra}-{n}", f"2026-11-{d:02d}", (1,) * 48)
        for ra in ("RA1", "RA2")
        for n in range(3)
        for d in range(1, 11)
    ]
    batches = list(history_batches(days, 25))
    assert all(len({d.ra for d in b}) == 1 and len(b) <= 25 for b in batches)
    assert sorted((d.consumer, d.day) for b in batches for d in b) == sorted((d.consumer, d.day) for d in days)
    assert [len({d.consumer for d in b}) for b in batches] == [2, 1, 2, 1]  # two whole 10-day consumers fit in 25
