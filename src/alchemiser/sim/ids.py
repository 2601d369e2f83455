"""Seeded ids: the n-th id of a kind is a pure function of (seed, generation, kind, n), so
the same seed and the same requests give the same orders, executions and activities."""

from __future__ import annotations

import uuid
from collections import Counter

from alchemiser.sim.hashing import stable_hash

SEQUENCE_BITS = 32
UUID_BITS = 128
VERSION_4 = 4


class IdSource:
    def __init__(self, seed: int, generation: int = 0) -> None:
        self.seed = seed
        self.generation = generation  # a reset without a seed starts a new one
        self._counts: Counter[str] = Counter()

    def _bits(self, kind: str) -> tuple[int, int]:
        """(n, 128 seeded bits) for the next id of `kind`."""
        n = self._counts[kind]
        self._counts[kind] += 1
        high = stable_hash(self.seed, self.generation, kind, n)
        low = stable_hash(self.seed, self.generation, kind, n, "low")
        return n, high << 64 | low

    def uuid(self, kind: str) -> str:
        return str(uuid.UUID(int=self._bits(kind)[1], version=VERSION_4))

    def ordered_uuid(self, kind: str) -> str:
        """A uuid whose first 32 bits are the sequence number: later ids sort after."""
        n, bits = self._bits(kind)
        rest_bits = UUID_BITS - SEQUENCE_BITS
        value = (n % (1 << SEQUENCE_BITS)) << rest_bits | bits & ((1 << rest_bits) - 1)
        return str(uuid.UUID(int=value, version=VERSION_4))
