"""The fast path: the optimum of models.py's programmes for each objective without building all O(n^2) pairs.

    volume.py   maximum flow in exact integers; its minimum cut is the certificate
    welfare.py  column generation over pairs with HiGHS; its capacity duals are the certificate
    maxmin.py   column generation over pairs with HiGHS, in models.py's two stages
    columns.py  what the two column generations share: HiGHS set up for basic solutions, the O(n) pricing sweep

Each module's docstring says why it reaches the Pyomo model's optimum; tests/unit/solver/test_solver_matching.py
checks that it does on random gates.
"""

from solver.fast.maxmin import maxmin_relaxation
from solver.fast.volume import max_volume
from solver.fast.welfare import welfare_relaxation

__all__ = ["max_volume", "maxmin_relaxation", "welfare_relaxation"]
