"""P2P trading's matching: orders, the three objectives solved optimally, seeded fairness, the verifier chaincode
runs, and the continuous double auction baseline. Usable without any ledger.

What chaincode needs is importable without Pyomo or HiGHS: `parse_orders`, `seed_from_hex`, `order_book_seed`,
`Proposal`, `verify`, `better` (solver.orders, solver.fairness, solver.proposals, solver.verify). Matching
services call `solve` (solver.matching), which needs highspy (solver.fast), and Pyomo only with method="model"
(solver.models).

All of that is pure: no threads, no logging set-up, no I/O. The matching daemon, solver.service, is apart from
it: it imports the pure solver and the standard library only, and nothing here (nor the chaincode) imports it.
"""

from consortium import OBJECTIVES
from solver.cda import continuous_double_auction
from solver.fairness import InvalidSeed, order_book_seed, seed_from_hex
from solver.orders import InvalidOrders, Order, load_orders, parse_orders
from solver.proposals import Certificate, Proposal, Trade, objective_value
from solver.verify import CertificateRejected, ProposalRejected, VerifiedValue, better, verify

__all__ = [
    "OBJECTIVES",
    "Certificate",
    "CertificateRejected",
    "InvalidOrders",
    "InvalidSeed",
    "Order",
    "Proposal",
    "ProposalRejected",
    "Trade",
    "VerifiedValue",
    "better",
    "continuous_double_auction",
    "load_orders",
    "objective_value",
    "order_book_seed",
    "parse_orders",
    "seed_from_hex",
    "verify",
]
