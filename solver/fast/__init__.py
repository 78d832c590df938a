"""The LP fast path: models.py's volume and welfare optimum without building all O(n^2) pairs, for books where a
self-trade constraint can bind (elsewhere clearing.py is faster still).

    volume.py   maximum flow in exact integers; its minimum cut is the certificate
    welfare.py  column generation over pairs with HiGHS; its capacity duals are the certificate
    columns.py  what welfare's column generation needs: HiGHS set up for basic solutions, the O(n) pricing sweep

Each module's docstring says why it reaches the Pyomo model's optimum; tests/unit/solver/test_solver_matching.py
checks that it does on random gates.
"""

from solver.fast.volume import max_volume
from solver.fast.welfare import welfare_relaxation

__all__ = ["max_volume", "welfare_relaxation"]
