"""Pause Python's cyclic garbage collector while tens of thousands of JSON rows are made and dropped.

Reading a prediction cache, selecting, writing and checking a submission each create and free
about 40,000 dicts and lists (10,000 detections). Each such burst makes CPython run its cyclic
collector, including full passes over every object the process holds, and a notebook kernel that
imported torch and detectron2 and trained a model holds hundreds of thousands. None of that work
finds anything: rows parsed from JSON or built from them hold no reference cycles, so reference
counting frees them anyway. Measured on ``benchmarks/bench_rethreshold.py`` part 1 (10,000
instances), these passes were about half of the export's time; the benchmark prints the export with
and without the pause side by side.

The pause is short (well under a second; the prediction outputs pause per image) and nests, across threads too
(the outputs' writer threads pause while another is paused): the collector is back on when the last pause ends,
even on an error, and is left off if the caller had turned it off.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager

PAUSE = True  # benchmarks set this False to time the same code with the collector running
_lock = threading.Lock()
_depth = 0  # pauses running now, in any thread


@contextmanager
def paused_gc():
    """Run the block with the cyclic collector off (see the module docstring); reference counting still frees."""
    global _depth
    with _lock:
        if not PAUSE or (_depth == 0 and not gc.isenabled()):
            owned = False
        else:
            owned = True
            _depth += 1
            gc.disable()
    try:
        yield
    finally:
        if owned:
            with _lock:
                _depth -= 1
                if _depth == 0:
                    gc.enable()
