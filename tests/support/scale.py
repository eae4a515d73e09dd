"""How big the reliability suite runs, from RELIABILITY_SCALE.

`reduced` (the default, what `make test` runs): the same faults and the same checks on fewer events and
invoices, so the whole suite fits the test loop. `full` (`make reliability`, and CI after `make test`):
the sizes the README's reliability figures come from.
"""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

SCALES = ("reduced", "full")
SCALE = os.environ.get("RELIABILITY_SCALE", "reduced")
if SCALE not in SCALES:
    raise RuntimeError(f"RELIABILITY_SCALE={SCALE!r}: use one of {', '.join(SCALES)}")
FULL = SCALE == "full"


def sized(reduced: T, full: T) -> T:
    """`full` under RELIABILITY_SCALE=full, else `reduced`."""
    return full if FULL else reduced
