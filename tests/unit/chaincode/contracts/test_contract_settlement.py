"""Settlement maths without a ledger: per-minute sums, each slot's performance, the mean-before baseline, rewards
rounded down once per RA, and the AC's and TSO's sums of their RAs' figures."""

from chaincode.contracts import settlement
from chaincode.contracts.dr_inputs import Command, Reading
from consortium import topology as topology_file
from consortium.units import minute_index, minute_label

TOPOLOGY = topology_file.load()
TSO, AC1, RA1, RA2 = (TOPOLOGY.organisation(name) for name in ("TSO", "AC1", "RA1", "RA2"))
START = minute_index("2021-01-14T00:00")
WINDOW = [minute_label(START + m) for m in range(5)]
BEFORE = [minute_label(START - m) for m in (3, 2, 1)]


def command(minutes=5, granularity=1, baseline_minutes=3, price=2500) -> Command:
    """Seed figure 6's command: 2021-01-14 00:00 JST on, 25.00 yen/kWh."""
    last = START + minutes - 1
    return Command("1", START, last, 600, ("AC1", "AC2"), price, granularity, baseline_minutes, START, last + 31)


def header(consumers=("C1",), method="mean-before", expected=(1000,) * 5, baseline=None) -> dict:
    return {
        "consumers": list(consumers),
        "baseline_method": method,
        "expected_wh": list(expected),
        "baseline_wh": None if baseline is None else list(baseline),
    }


def sums(*series: tuple[list[str], list[int]], readings: int = 1) -> settlement.MinuteSums:
    return {label: (wh, readings) for labels, values in series for label, wh in zip(labels, values, strict=True)}


def column(figure: dict, name: str) -> list:
    return [row[name] for row in figure["slots"]]


def test_a_slot_delivers_its_baseline_less_what_was_consumed():
    assert settlement.slot_row("00:00", 3000, 1000, 1500, complete=True) == {
        "slot": "00:00",
        "complete": True,
        "baseline_wh": 3000,
        "actual_wh": 1000,
        "delivered_wh": 2000,
        "expected_wh": 1500,
        "shortfall_wh": 0,
        "rewarded_wh": 2000,
    }
    consumed_more = settlement.slot_row("00:00", 3000, 6000, 1000, complete=True)
    assert (consumed_more["delivered_wh"], consumed_more["shortfall_wh"], consumed_more["rewarded_wh"]) == (
        -3000,
        4000,
        0,
    )


def test_an_incomplete_slot_delivers_nothing_and_falls_short_by_all_it_expected():
    row = settlement.slot_row("00:00", 3000, 1000, 1500, complete=False)
    assert (row["delivered_wh"], row["shortfall_wh"], row["rewarded_wh"]) == (0, 1500, 0)


def test_rewards_are_hundredths_of_a_yen_rounded_down():
    assert settlement.reward(6000, 2500) == 15000  # 6 kWh at 25.00 yen/kWh = 150.00 yen
    assert settlement.reward(1, 2500) == 2  # 2.5 hundredths, rounded down
    assert settlement.reward(999, 1) == 0
    assert settlement.reward(0, 2500) == 0


def test_a_batch_sums_wh_and_counts_readings_per_minute_and_batches_add_up():
    batch = settlement.batch_sums(
        [Reading("C1", START, 1000), Reading("C4", START, 500), Reading("C1", START + 1, 2000)]
    )
    assert batch == {WINDOW[0]: [1500, 2], WINDOW[1]: [2000, 1]}
    other = {WINDOW[1]: [300, 1], WINDOW[2]: [700, 1]}
    assert settlement.added_sums([batch, other]) == {WINDOW[0]: (1500, 2), WINDOW[1]: (2300, 2), WINDOW[2]: (700, 1)}
    assert settlement.added_sums([]) == {}


def test_an_aggregate_adds_its_ras_minutes_and_shows_zero_where_none_read():
    ra1 = {WINDOW[0]: (1000, 1), WINDOW[1]: (2000, 1)}
    ra2 = {WINDOW[0]: (3000, 1)}
    aggregate = settlement.aggregate(AC1, WINDOW[:3], [ra1, ra2])
    assert (aggregate["org"], aggregate["level"], aggregate["parent"]) == ("AC1", "ac", None)
    assert aggregate["minutes"] == [
        {"minute": WINDOW[0], "wh": 4000, "readings": 2},
        {"minute": WINDOW[1], "wh": 2000, "readings": 1},
        {"minute": WINDOW[2], "wh": 0, "readings": 0},
    ]


def test_the_mean_before_baseline_is_the_mean_of_the_minutes_before_the_window():
    figure = settlement.ra_figure(
        command(), RA1, header(), sums((BEFORE, [3000, 3000, 3001]), (WINDOW, [1000, 2000, 2000, 6000, 1000]))
    )
    assert figure["baseline_minutes_used"] == 3
    assert column(figure, "baseline_wh") == [3000] * 5  # 9001 // 3
    assert column(figure, "delivered_wh") == [2000, 1000, 1000, -3000, 2000]
    assert column(figure, "shortfall_wh") == [0, 0, 0, 4000, 0]
    assert (figure["rewarded_wh"], figure["shortfall_wh"], figure["actual_wh"]) == (6000, 4000, 12000)
    assert figure["reward_hundredth_yen"] == 15000
    assert column(figure, "slot") == WINDOW
    assert (figure["org"], figure["level"], figure["parent"], figure["declared"]) == ("RA1", "ra", "AC1", True)


def test_the_mean_before_baseline_skips_minutes_some_consumer_did_not_read():
    readings = {**sums((BEFORE, [4000, 9999, 2000]), readings=2), BEFORE[1]: (9999, 1)}
    readings.update(sums((WINDOW, [1000] * 5), readings=2))
    figure = settlement.ra_figure(command(), RA1, header(consumers=("C1", "C4")), readings)
    assert figure["baseline_minutes_used"] == 2
    assert column(figure, "baseline_wh") == [3000] * 5  # (4000 + 2000) // 2, without the half-read 9999


def test_slots_longer_than_a_minute_take_the_mean_per_minute_times_their_length():
    figure = settlement.ra_figure(
        command(minutes=4, granularity=2),
        RA1,
        header(expected=(500, 500)),
        sums((BEFORE, [1000, 1000, 1001]), (WINDOW[:4], [400, 400, 900, 900])),
    )
    assert column(figure, "slot") == WINDOW[0:4:2]
    assert column(figure, "baseline_wh") == [2000, 2000]  # 3001 * 2 // 3
    assert column(figure, "actual_wh") == [800, 1800]
    assert column(figure, "delivered_wh") == [1200, 200]
    assert column(figure, "shortfall_wh") == [0, 300]


def test_without_any_complete_minute_before_the_window_the_baseline_is_zero():
    figure = settlement.ra_figure(command(), RA1, header(), sums((WINDOW, [100] * 5)))
    assert figure["baseline_minutes_used"] == 0
    assert column(figure, "delivered_wh") == [-100] * 5
    assert figure["reward_hundredth_yen"] == 0


def test_declared_baselines_and_a_missing_reading():
    readings = sums((WINDOW, [3000, 1000, 3000, 4000, 1000]), readings=2)
    readings[WINDOW[4]] = (1000, 1)  # one of the two consumers has no reading at 00:04
    figure = settlement.ra_figure(command(), RA2, header(("C2", "C5"), "declared", (4000,) * 5, (10000,) * 5), readings)
    assert column(figure, "complete") == [True] * 4 + [False]
    assert column(figure, "delivered_wh") == [7000, 9000, 7000, 6000, 0]
    assert figure["shortfall_wh"] == 4000
    assert figure["reward_hundredth_yen"] == 29000 * 2500 // 1000
    assert figure["baseline_minutes_used"] is None


def test_an_ra_that_did_not_declare_has_a_figure_of_zeros():
    figure = settlement.ra_figure(command(), RA2, None, {})
    assert (figure["declared"], figure["consumers"], figure["baseline_method"]) == (False, 0, None)
    assert column(figure, "complete") == [True] * 5
    assert all(figure[name] == 0 for name in settlement.SLOT_FIELDS)
    assert "baseline_minutes_used" not in figure


def test_an_acs_reward_is_the_sum_of_its_ras_rewards_each_rounded_down():
    ra1 = settlement.figure(RA1, 2500, [settlement.slot_row(WINDOW[0], 1, 0, 0, True)], declared=True)
    ra2 = settlement.figure(RA2, 2500, [settlement.slot_row(WINDOW[0], 1, 0, 0, True)], declared=True)
    assert ra1["reward_hundredth_yen"] == ra2["reward_hundredth_yen"] == 2
    ac = settlement.sum_figures(AC1, command(minutes=1), [ra1, ra2])
    assert ac["rewarded_wh"] == 2
    assert ac["reward_hundredth_yen"] == 4  # not 2 Wh * 2500 // 1000 = 5
    assert (ac["org"], ac["level"], ac["declared"]) == ("AC1", "ac", True)


def test_an_acs_slot_is_complete_when_every_declared_ra_is():
    incomplete = settlement.ra_figure(command(minutes=1, baseline_minutes=1), RA1, header(expected=(0,)), {})
    undeclared = settlement.ra_figure(command(minutes=1, baseline_minutes=1), RA2, None, {})
    assert column(incomplete, "complete") == [False]
    ac = settlement.sum_figures(AC1, command(minutes=1), [incomplete, undeclared])
    assert column(ac, "complete") == [False]
    only_undeclared = settlement.sum_figures(AC1, command(minutes=1), [undeclared])
    assert column(only_undeclared, "complete") == [True] and not only_undeclared["declared"]


def test_only_the_tsos_view_has_a_total_and_it_adds_up_the_acs():
    ra1 = settlement.ra_figure(command(), RA1, header(expected=(0,) * 5), sums((BEFORE, [500] * 3), (WINDOW, [0] * 5)))
    ac1 = settlement.sum_figures(AC1, command(), [ra1])
    view = settlement.settlement_view(TSO, command(), [ac1, ra1], settled=True)
    assert (view["command"], view["settled"], view["price_per_kwh"]) == ("1", True, 2500)
    assert view["total"]["rewarded_wh"] == ac1["rewarded_wh"] == 2500
    assert view["total"]["reward_hundredth_yen"] == 6250
    assert view["units"]["reward"] == "hundredths of a yen"
    assert "total" not in settlement.settlement_view(AC1, command(), [ac1, ra1], settled=False)
