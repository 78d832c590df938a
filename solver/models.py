"""Pyomo models of the three matching objectives, solved with HiGHS: the readable reference for the fast path.

For one gate (quantities in kWh and prices in yen per kWh inside the models, which keeps HiGHS well scaled):

    SELLS, BUYS       the gate's sell and buy orders
    PAIRS             (s, b) with ask[s] <= bid[b] and participant[s] != participant[b]      (B6)
    ask[s], bid[b]    yen/kWh;  qty[o]  kWh
    x[s, b] >= 0      kWh that s sells to b

    capacity:         sum_{b : (s,b) in PAIRS} x[s,b] <= qty[s]      for s in SELLS          (dual u[s])
                      sum_{s : (s,b) in PAIRS} x[s,b] <= qty[b]      for b in BUYS           (dual v[b])

    volume:   max  sum_{(s,b) in PAIRS} x[s,b]
    welfare:  max  sum_{(s,b) in PAIRS} (bid[b] - ask[s]) x[s,b]

The capacity matrix is the incidence matrix of a bipartite graph, which is totally unimodular: a basic optimal
solution (what HiGHS's simplex returns) has whole-Wh flows and, the costs being whole sen, whole-sen duals.
The duals are the optimality certificate: u[s] + v[b] >= gain of (s, b) for every pair, and
sum qty u + sum qty v equals the optimum.

    maxmin:  welfare's model; matching.py prices its fills at one price (maxmin.py).
Both are linear programmes over continuous kWh whose basic optima are whole Wh.
"""

from __future__ import annotations

import pyomo.environ as pyo

from consortium.units import SEN_PER_YEN, WH_PER_KWH
from solver.orders import compatible
from solver.relaxation import LpSolution, native_stdout_silenced


def matching_model(orders, objective: str) -> pyo.ConcreteModel:
    """The model above for objective (volume or welfare)."""
    sells = [o for o in orders if o.is_sell]
    buys = [o for o in orders if not o.is_sell]
    pairs = [(s.id, b.id) for s in sells for b in buys if compatible(s, b)]

    m = pyo.ConcreteModel(name=f"gate-{objective}")
    m.SELLS = pyo.Set(initialize=[s.id for s in sells])
    m.BUYS = pyo.Set(initialize=[b.id for b in buys])
    m.PAIRS = pyo.Set(within=m.SELLS * m.BUYS, initialize=pairs)
    m.BUYS_OF = pyo.Set(m.SELLS, initialize={s.id: [] for s in sells})
    m.SELLS_OF = pyo.Set(m.BUYS, initialize={b.id: [] for b in buys})
    for s, b in pairs:
        m.BUYS_OF[s].add(b)
        m.SELLS_OF[b].add(s)
    m.ask = pyo.Param(m.SELLS, initialize={s.id: s.price / SEN_PER_YEN for s in sells})
    m.bid = pyo.Param(m.BUYS, initialize={b.id: b.price / SEN_PER_YEN for b in buys})
    m.qty = pyo.Param(m.SELLS | m.BUYS, initialize={o.id: o.quantity / WH_PER_KWH for o in orders})

    m.x = pyo.Var(m.PAIRS, domain=pyo.NonNegativeReals)

    def sell_capacity_rule(m, s):
        if not m.BUYS_OF[s]:
            return pyo.Constraint.Skip
        return sum(m.x[s, b] for b in m.BUYS_OF[s]) <= m.qty[s]

    m.sell_capacity = pyo.Constraint(m.SELLS, rule=sell_capacity_rule)

    def buy_capacity_rule(m, b):
        if not m.SELLS_OF[b]:
            return pyo.Constraint.Skip
        return sum(m.x[s, b] for s in m.SELLS_OF[b]) <= m.qty[b]

    m.buy_capacity = pyo.Constraint(m.BUYS, rule=buy_capacity_rule)

    def surplus_rule(m):
        return sum((m.bid[b] - m.ask[s]) * m.x[s, b] for s, b in m.PAIRS)

    m.surplus = pyo.Expression(rule=surplus_rule)

    if objective == "volume":

        def volume_rule(m):
            return sum(m.x[s, b] for s, b in m.PAIRS)

        m.volume = pyo.Objective(rule=volume_rule, sense=pyo.maximize)
    elif objective == "welfare":
        m.welfare = pyo.Objective(expr=m.surplus, sense=pyo.maximize)
    else:
        raise ValueError(f"unknown objective {objective!r}")
    return m


def _solve(m, solver) -> None:
    with native_stdout_silenced():
        results = solver.solve(m)
    condition = results.solver.termination_condition
    if condition != pyo.TerminationCondition.optimal:
        raise RuntimeError(f"HiGHS did not find an optimum for {m.name}: {condition}")


def model_relaxation(orders, objective: str) -> LpSolution:
    """Build and solve the Pyomo model for objective with HiGHS (appsi_highs, which drives highspy)."""
    m = matching_model(orders, objective)
    m.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    if m.PAIRS:
        _solve(m, pyo.SolverFactory("appsi_highs"))
    bound = pyo.value(m.component(objective), exception=False) or 0.0
    flows = {p: m.x[p].value * WH_PER_KWH for p in m.PAIRS if m.x[p].value}
    # Duals are objective units per kWh; per Wh in the certificate's units that is x1 for volume (Wh/Wh)
    # and, for welfare, yen/kWh -> sen/kWh (= millisen per Wh).
    scale = 1 if objective == "volume" else SEN_PER_YEN
    return LpSolution(
        flows=flows,
        bound=bound,
        surplus=pyo.value(m.surplus, exception=False) or 0.0,
        sell_duals={s: m.dual.get(m.sell_capacity[s], 0.0) * scale for s in m.sell_capacity},
        buy_duals={b: m.dual.get(m.buy_capacity[b], 0.0) * scale for b in m.buy_capacity},
    )
