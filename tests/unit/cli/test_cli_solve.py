"""`gridledger market solve`: JSON and table output, and one-line errors with exit code 1 for bad input (2 for
what click itself refuses, as an unknown objective)."""

import json

import pytest
from click.testing import CliRunner

from cli.market import market
from solver.matching import solve
from solver.orders import load_orders

BOOK = {
    "orders": [
        {"id": "s1", "participant": "alice", "side": "sell", "price": 12.5, "quantity": 3.2, "time": 1},
        {"id": "s2", "participant": "bob", "side": "sell", "price": 14, "quantity": 2, "time": 1},
        {"id": "b1", "participant": "carol", "side": "buy", "price": 18.25, "quantity": 4, "time": 2},
        {"id": "b2", "participant": "alice", "side": "buy", "price": 16, "quantity": 1.5, "time": 3},
    ]
}


@pytest.fixture
def book_file(tmp_path):
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(BOOK))
    return path


def run(*args):
    return CliRunner().invoke(market, ["solve", *map(str, args)])


@pytest.mark.parametrize("objective, unit", [("volume", "kWh"), ("welfare", "yen"), ("maxmin", "yen/kWh")])
def test_json_output_reports_the_solution_in_kwh_and_yen(book_file, objective, unit):
    result = run("--input", book_file, "--objective", objective, "--seed", "00ff", "--json")
    assert result.exit_code == 0, result.output
    output = json.loads(result.output)
    expected = solve(load_orders(json.dumps(BOOK)), objective, bytes.fromhex("00ff"))
    assert output["objective"] == objective and output["unit"] == unit and output["seed"] == "00ff"
    assert output["trades"] == [
        {"sell": t.sell, "buy": t.buy, "quantity": t.quantity / 1000, "price": t.price / 100} for t in expected.trades
    ]
    assert output["value"] == pytest.approx(
        float(expected.value) / {"volume": 1000, "welfare": 100000, "maxmin": 100}[objective]
    )
    assert output["certified_optimal"] == (objective != "maxmin")
    assert output["seconds"] >= 0


def test_volume_over_the_sample_book_trades_all_that_can_trade(book_file):
    output = json.loads(run("--input", book_file, "--objective", "volume", "--json").output)
    # alice cannot buy her own energy: s1 (3.2) and s2 (2) against b1 (4) and b2 (1.5, only from bob): 5.2 kWh.
    assert output["value"] == pytest.approx(5.2)
    assert all(not (t["sell"] == "s1" and t["buy"] == "b2") for t in output["trades"])


def test_the_table_lists_value_and_trades(book_file):
    result = run("--input", book_file, "--objective", "welfare")
    assert result.exit_code == 0
    assert "value      24.2 yen (certified optimal)" in result.output
    assert "s1    b1        3.200     15.38" in result.output


@pytest.mark.parametrize(
    "content, message",
    [
        (
            '{"orders": [{"id": 17, "participant": "x", "side": "buy", "price": -3, "quantity": 1, "time": 0}]}',
            "order 17: price must be between 0 and 1000 yen/kWh, got -3",
        ),
        (
            '{"orders": [{"id": 1, "participant": "x", "side": "buy", "price": 10.001, "quantity": 1, "time": 0}]}',
            "order 1: price must be a multiple of 0.01 yen/kWh, got 10.001",
        ),
        ("[1, 2", "the order book is not valid JSON"),
    ],
)
def test_bad_books_exit_1_with_one_line(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = run("--input", path, "--objective", "volume")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and message in result.output and "Traceback" not in result.output


def test_a_missing_file_or_bad_seed_exits_1(tmp_path, book_file):
    missing = run("--input", tmp_path / "nope.json", "--objective", "volume")
    assert missing.exit_code == 1 and "cannot read" in missing.output and "No such file" in missing.output
    bad_seed = run("--input", book_file, "--objective", "volume", "--seed", "zz")
    assert bad_seed.exit_code == 1 and "seed must be hexadecimal" in bad_seed.output
    unknown = run("--input", book_file, "--objective", "profit")
    assert unknown.exit_code == 2
