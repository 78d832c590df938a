"""What solving a gate's linear programme gives back, shared by the Pyomo model and the fast path, and the
one piece of HiGHS housekeeping both need."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from dataclasses import dataclass, field


@dataclass
class LpSolution:
    """An optimal solution of a gate's programme, in the solver's integer units but still as floats.

    flows[(sell id, buy id)]: Wh; sell_duals / buy_duals: the capacity duals in objective units per Wh (welfare's
    are sen per kWh); bound: the optimum in display units (kWh, yen);
    surplus: total surplus, yen.
    """

    flows: dict
    bound: float
    surplus: float
    sell_duals: dict = field(default_factory=dict)
    buy_duals: dict = field(default_factory=dict)


@contextlib.contextmanager
def native_stdout_silenced():
    """HiGHS prints a banner on C's stdout the first time a solver object is made; keep it out of --json output."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        ctypes.CDLL(None).fflush(None)
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
