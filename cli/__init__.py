"""The `gridledger` command: one group per area (network, dr, market, web, demo, audit, openadr), each a module of cli/."""

import click


@click.group()
def main():
    """gridledger: demand response and P2P trading on Hyperledger Fabric."""


def _register() -> None:
    from cli.audit import audit
    from cli.demo import demo
    from cli.dr import dr
    from cli.dr_parts import demo as dr_demo
    from cli.dr_parts import demo_command, demo_meters, demo_relay
    from cli.market import market
    from cli.network import network
    from cli.openadr import openadr
    from cli.units import history, units
    from cli.web import web

    main.add_command(network)
    main.add_command(dr)
    main.add_command(market)
    main.add_command(web)
    main.add_command(demo)
    main.add_command(audit)
    main.add_command(openadr)
    dr.add_command(history)  # gridledger dr history …, gridledger dr units … (cli/units.py)
    dr.add_command(units)
    for command in (dr_demo, demo_command, demo_meters, demo_relay):  # gridledger dr demo (cli/dr_parts.py)
        dr.add_command(command)


_register()
