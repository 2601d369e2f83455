"""Hashes that are the same in every process (unlike `hash`): the simulator's seeded draws."""

from __future__ import annotations

import hashlib


def stable_hash(*parts: str | int) -> int:
    """A 64-bit hash of the parts."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def unit_interval(*parts: str | int) -> float:
    """A draw in [0, 1) from the parts."""
    return stable_hash(*parts) / 2.0**64
