"""Client-side domain services: what every face (CLI, web, simulators, matching services) does with the ledger."""
