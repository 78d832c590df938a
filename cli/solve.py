"""The `gridledger market` commands: solve a gate's order book from a JSON file and show or print the trades."""

from __future__ import annotations

import json

import click

from consortium import OBJECTIVES
from consortium.units import SEN_PER_YEN, WH_PER_KWH
from solver.fairness import InvalidSeed, seed_from_hex
from solver.matching import METHODS, solve
from solver.orders import InvalidOrders, load_orders
from solver.proposals import value_in_display_units

UNITS = {"volume": "kWh", "welfare": "yen", "maxmin": "yen/kWh"}


@click.group()
def market():
    """P2P trading: optimal matching of a gate's buy and sell orders."""


def _fail(message: str, code: int = 2):
    click.echo(f"Error: {message}", err=True)
    raise click.exceptions.Exit(code)


@market.command("solve")
@click.option(
    "--input",
    "input_path",
    required=True,
    metavar="FILE",
    help='Order book: {"orders": [{"id", "participant", "side", "price", "quantity", "time"}]}, '
    "price in yen/kWh, quantity in kWh, time in Unix ms or ISO 8601.",
)
@click.option(
    "--objective",
    required=True,
    type=click.Choice(OBJECTIVES),
    help="volume: most kWh traded; welfare: most total surplus; maxmin: raise the worst-off participant.",
)
@click.option(
    "--seed",
    "seed_hex",
    metavar="HEX",
    help="The gate's seed (hex) ranking equivalent orders; default: SHA-256 of the order book.",
)
@click.option(
    "--method",
    type=click.Choice(METHODS),
    default="fast",
    show_default=True,
    help="fast: the fast path; model: the Pyomo model (small gates).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def solve_command(input_path, objective, seed_hex, method, as_json):
    """Match the orders in FILE for an objective and print the trades."""
    try:
        with open(input_path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        _fail(f"cannot read {input_path}: {error.strerror}")
    except UnicodeDecodeError:
        _fail(f"{input_path} is not UTF-8 text")
    try:
        orders = load_orders(text)
        seed = seed_from_hex(seed_hex) if seed_hex is not None else None
    except (InvalidOrders, InvalidSeed) as error:
        _fail(f"{input_path}: {error}" if isinstance(error, InvalidOrders) else str(error))
    try:
        solution = solve(orders, objective, seed, method=method)
    except RuntimeError as error:  # the solver failed: not the user's input, but still no stack trace
        _fail(str(error), code=1)

    value = value_in_display_units(objective, solution.value)
    trades = [
        {"sell": t.sell, "buy": t.buy, "quantity": t.quantity / WH_PER_KWH, "price": t.price / SEN_PER_YEN}
        for t in solution.trades
    ]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "objective": objective,
                    "value": value,
                    "unit": UNITS[objective],
                    "certified_optimal": solution.certificate is not None,
                    "seed": solution.seed.hex(),
                    "trades": trades,
                    "seconds": round(solution.seconds, 6),
                },
                indent=2,
            )
        )
        return
    proof = "certified optimal" if solution.certificate is not None else "rounded LP optimum, no certificate"
    click.echo(f"objective  {objective}")
    click.echo(f"value      {value:g} {UNITS[objective]} ({proof})")
    click.echo(
        f"trades     {len(trades)}, {solution.volume / WH_PER_KWH:g} kWh, "
        f"surplus {solution.surplus / (SEN_PER_YEN * WH_PER_KWH):g} yen"
    )
    click.echo(f"seed       {solution.seed.hex()}")
    if trades:
        width_s = max(4, *(len(t["sell"]) for t in trades))
        width_b = max(3, *(len(t["buy"]) for t in trades))
        click.echo("")
        click.echo(f"{'sell':<{width_s}}  {'buy':<{width_b}}  {'kWh':>10}  {'yen/kWh':>8}")
        for t in trades:
            click.echo(f"{t['sell']:<{width_s}}  {t['buy']:<{width_b}}  {t['quantity']:>10.3f}  {t['price']:>8.2f}")
    click.echo(f"\nsolved in {solution.seconds:.3f} s")
