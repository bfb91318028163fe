"""What the dataset check, the submission check and the dataset loader say about json files and ids.

All three read json that users download or write, and all three must say the same thing when it is
cut short or an id is unknown, so the wording lives here once.
"""

from __future__ import annotations

import json


def is_int(value) -> bool:
    """An integer id. ``bool`` is an int subclass, but ``true`` as an id is a data bug, not id 1."""
    return isinstance(value, int) and not isinstance(value, bool)


def describe_ids(ids) -> str:
    """Short list of known ids for "unknown id" messages: a range when contiguous."""
    ids = sorted(ids)
    if not ids:
        return "none"
    if ids == list(range(ids[0], ids[-1] + 1)) and len(ids) > 2:
        return f"{ids[0]}..{ids[-1]}"
    if len(ids) > 10:
        return ", ".join(map(str, ids[:10])) + f", ... ({len(ids)} ids)"
    return ", ".join(map(str, ids))


def describe_json_error(text: str, exc: json.JSONDecodeError) -> str:
    """Where the parse broke, and whether the file looks cut short (an interrupted download or copy)."""
    end = text.rstrip()
    if not end:
        hint = "the file is empty"
    elif exc.pos >= len(end) - 1 or "Unterminated" in exc.msg or not end.endswith(("]", "}")):
        hint = "the file ends early: it looks truncated (was it cut off while being written or copied?)"
    else:
        hint = "the file is corrupt"
    return (
        f"not valid JSON at line {exc.lineno}, column {exc.colno} (character {exc.pos} of {len(text)}): "
        f"{exc.msg}; {hint}; download, copy or write it again"
    )
