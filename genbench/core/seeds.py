"""Seeds of estimator noise derived from several integers at once.

`seed + rank` or `seed + batch` collide: rank 1 of run seed 0 draws what rank 0 of run seed 1
draws. numpy's SeedSequence hashes a tuple of integers into a seed, so two different tuples
give unrelated streams.
"""

from __future__ import annotations

import numpy as np


def derive_seed(*parts: int) -> int:
    """A 63-bit seed for the tuple `parts` (ints; a negative one is read modulo 2^64): equal
    tuples, equal seeds; different tuples, unrelated ones."""
    entropy = [int(p) % 2**64 for p in parts]
    state = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))
