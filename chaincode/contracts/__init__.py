"""The gridledger chaincode's contracts, after fabric-samples: a module per contract holding its transactions
(dr, units, market, records), beside what they share and what can be tested without a ledger.

    dr.py          the "dr" contract's transactions: commands, declarations, readings, aggregates, settlement
    dr_inputs.py   its inputs as typed values, decoded and checked field by field
    dr_time.py     when each DR step may happen, by the transaction's (bounded) timestamp
    meter_attestation.py  meter certificates from the meter operator's CA, and the meters' signatures checked
    settlement.py  its performance and reward maths, pure functions
    baselines.py   kWh-type DR baselines (ERAB guideline: High 4 of 5, High 2 of 3, same-day adjustment)
    balancing.py   ΔkW products, baselines, Assessment I/II and penalties (EPRX's balancing-market guide)
    settlement_units.py  30-minute units, per-level figures, largest-remainder split in sen
    products.py    what a command's product names (kWh-type DR or a balancing product), with the topology's defaults
    dr_units.py    the "units" contract: 30-minute history, 基準値計画 forecasts, settlement per unit by those rules
    access.py      whose figures an organisation may see (seed figure 7)
    market.py      the "market" contract: gates, orders, verified proposals, trades, positions
    market_seed.py the gate's seed, committed and revealed by the matchers
    records.py     the "records" contract: generic JSON records, for integration tests and the benchmark
    common.py      canonical JSON, "failed to <action>: <why>", the caller's identity, whose a consumer is
"""
