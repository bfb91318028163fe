"""How long and how big, written one way everywhere: plans, run tables, space checks, last words.

A reader compares a run's ``2 h 05 min`` with its budget's ``3 h 00 min``, and the space a run needs with
what Drive has free; one rule for each makes those comparisons work at a glance.
"""

from __future__ import annotations

MIB = 2**20


def duration(seconds: float) -> str:
    """``45 s`` under a minute and a half, then ``12 min``, then ``2 h 05 min``."""
    minutes = round(seconds / 60)
    if minutes < 2:
        return f"{seconds:.0f} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def size(num_bytes: float) -> str:
    """``817 MiB`` under a gigabyte, then ``2.57 GB``: the units the docs' size figures use."""
    return f"{num_bytes / 1e9:.2f} GB" if num_bytes >= 1e9 else f"{num_bytes / MIB:.0f} MiB"
