"""The `gridledger` command: one entry point whose groups each live beside the code they drive."""

import click


@click.group()
def main():
    """gridledger: demand response and P2P trading on Hyperledger Fabric."""


def _register() -> None:
    from gateway.dr_commands import dr
    from network.audit import audit
    from network.commands import network
    from sim.demo import demo
    from web.commands import web
    from gateway.market_commands import market

    main.add_command(network)
    main.add_command(dr)
    main.add_command(market)
    main.add_command(web)
    main.add_command(demo)
    main.add_command(audit)


_register()
