"""Waiting for the network to agree: peers commit a block at slightly different moments, and a member that missed a
private write's push fetches it at its next reconciliation (every 5 s), so a read on another peer is retried for a
bounded time."""

import time

from gateway.errors import GatewayError


def eventually(check, what: str | None = None, seconds: float = 30.0, *, retry_on=(AssertionError, GatewayError)):
    """check()'s result once it returns without raising one of `retry_on` (and, when `what` names the awaited
    thing, returns something truthy); after `seconds` the last error is raised, or "timed out waiting for <what>"."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            result = check()
            if what is None or result:
                return result
        except retry_on:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)
