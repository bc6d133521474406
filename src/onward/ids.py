"""Job ids: time-ordered UUIDs (version 7 layout), so ids sort roughly by creation."""

from __future__ import annotations

import os
import time

__all__ = ["new_id", "new_ids"]


def new_id() -> str:
    """A new job id."""
    rand = os.urandom(10)
    h = (
        (time.time_ns() // 1_000_000 & (2**48 - 1)).to_bytes(6, "big")
        + bytes((0x70 | rand[0] & 0x0F, rand[1], 0x80 | rand[2] & 0x3F))
        + rand[3:]
    ).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_ids(n: int) -> list[str]:
    """``n`` ids as :func:`new_id` makes them, with one call for the random bytes (bulk enqueue)."""
    stamp = (time.time_ns() // 1_000_000 & (2**48 - 1)).to_bytes(6, "big")
    pool = os.urandom(10 * n)
    ids = []
    for i in range(0, 10 * n, 10):
        rand = pool[i : i + 10]
        h = (stamp + bytes((0x70 | rand[0] & 0x0F, rand[1], 0x80 | rand[2] & 0x3F)) + rand[3:]).hex()
        ids.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return ids
