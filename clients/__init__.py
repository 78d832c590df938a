"""Client-side domain services: what every face (CLI, web, simulators, matching services) does with the ledger.

    clients.contract   one organisation's calls to one contract (JSON, its own peer), Refused, eventually
    clients.dr         the DR client (DrClient), readings, the BC/AS comparison
    clients.market     the market client (MarketClient)
    clients.session    an identity's gateway with its two clients (Session)

Sessions are opened elsewhere: network.connections for a run directory's identities, web.backend for the web.
"""
