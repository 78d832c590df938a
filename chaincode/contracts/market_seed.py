"""Sealed orders and the gate's seed: the commitments a participant publishes while a gate is open, the checks of
what it reveals after, and the seed every peer recomputes from the revealed contributions (issue 13).

    commitment = order_commitment(order, salt)                # SHA-256 hex; only this is public while open
    commitment = seed_commitment(gate, org, secret)           # a matcher's contribution to the gate's seed
    seed = gate_seed(gate, book_digest(book), [(org, secret), ...])

Everything is SHA-256 over canonical JSON (sorted keys, no spaces, UTF-8), so a client, every endorsing peer and
an auditor compute the same bytes. A seed commitment names the gate and the organisation, so a contribution
cannot be copied from another matcher or reused from another gate. Salts and secrets are random and long enough
(16 and 32 bytes) that nobody can find a sealed order by trying the few prices and quantities a market offers.
"""

import hashlib
import re

from chaincode.contracts.common import canonical_json

SALT_BYTES = 16  # at least: an order's salt
SECRET_BYTES = 32  # exactly: a matcher's contribution
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
SEED_DOMAIN = "gridledger/market/seed/1"
COMMITMENT_DOMAIN = "gridledger/market/seed-commitment/1"


def _sha256_hex(value) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def order_commitment(order: dict, salt: str) -> str:
    """What a placer publishes for an order while its gate is open: SHA-256 of {"order", "salt"}; `order` is the
    object the placer will reveal ({"participant", "side", "price", "quantity"}, yen/kWh and kWh as given)."""
    return _sha256_hex({"order": order, "salt": salt})


def seed_commitment(gate: str, org: str, secret: str) -> str:
    """What a matcher publishes for its contribution to a gate's seed while the gate is open."""
    return _sha256_hex([COMMITMENT_DOMAIN, gate, org, secret])


def book_digest(book: list[dict]) -> str:
    """SHA-256 of the revealed book as the ledger keeps it (sorted by id; every order with its salt)."""
    return _sha256_hex(sorted(book, key=lambda o: o["id"]))


def gate_seed(gate: str, digest: str, reveals: list[tuple[str, str]]) -> bytes:
    """The gate's seed: SHA-256 over the gate, its revealed book and the revealed contributions in organisation
    order. With no contribution revealed it is the book's alone (the fallback the gate record marks)."""
    return hashlib.sha256(canonical_json([SEED_DOMAIN, gate, digest, sorted([org, s] for org, s in reveals)])).digest()


def is_digest(value) -> bool:
    """A SHA-256 hex digest, lower case: the form of every commitment."""
    return isinstance(value, str) and _HEX_DIGEST.fullmatch(value) is not None


def hex_problem(what: str, value, low_bytes: int, high_bytes: int) -> str | None:
    """Why `value` is not lower-case hex of low_bytes..high_bytes bytes (None if it is)."""
    if not isinstance(value, str) or not re.fullmatch(r"(?:[0-9a-f]{2})+", value):
        return f"{what} must be lower-case hexadecimal, got {str(value)[:80]!r}"
    if not low_bytes <= len(value) // 2 <= high_bytes:
        size = f"{low_bytes}" if low_bytes == high_bytes else f"{low_bytes} to {high_bytes}"
        return f"{what} must be {size} bytes of hexadecimal, got {len(value) // 2}"
    return None
