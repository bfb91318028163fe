"""Known-harmless library warnings and log lines, kept out of the notebook cells (one list, here).

Each entry names what it hides and why it is harmless, so a new warning still shows.
"""

from __future__ import annotations

import logging
import warnings

QUIET_CATEGORIES = (FutureWarning, DeprecationWarning)  # torch.jit, detectron2/fvcore deprecations


def quiet_known_warnings() -> None:
    """Keep known-harmless library warnings (torch.jit, detectron2/fvcore deprecations) out of the cells."""
    for category in QUIET_CATEGORIES:
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", message=r".*(torch\.meshgrid|TypedStorage|weights_only).*")
    logging.getLogger("fvcore.common.checkpoint").setLevel(logging.WARNING)
    # "Category ids in annotations are not in [1, #categories]! We'll apply a mapping": expected, the
    # dataset's ids are mapped by dataset.record.ClassMap; and register_all reports the split sizes itself
    logging.getLogger("detectron2.data.datasets.coco").setLevel(logging.ERROR)
    # torch 2.14 logs "is_fx_tracing will return true for both ..." once per process when detectron2's
    # layers ask whether they are being traced: a notice to library authors, nothing for the user
    logging.getLogger("torch.fx._symbolic_trace").setLevel(logging.ERROR)


def quiet_warnings_option() -> str:
    """The categories above as a ``PYTHONWARNINGS`` value, for processes this one starts.

    A spawned training worker imports torch and detectron2 (and warns) while it unpickles its task,
    before any code of ours runs in it; a Jupyter kernel shows those warnings in the cell.
    """
    return ",".join(f"ignore::{category.__name__}" for category in QUIET_CATEGORIES)
