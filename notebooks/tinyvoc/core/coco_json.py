"""Reading COCO json, and what the dataset check, the submission check and the loader say about json and ids.

All three read json that users download or write, and all three must say the same thing when it is
cut short or an id is unknown, so the wording lives here once.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import TinyVocError


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


def load_coco(path: str | Path, need_annotations: bool = False) -> dict:
    """Read a COCO json, stopping with a message naming the file when it is absent or malformed."""
    path = Path(path)
    if not path.is_file():
        raise TinyVocError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TinyVocError(f"{path}: not UTF-8 text (byte {exc.start}); is this really the json file?") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TinyVocError(f"{path}: {describe_json_error(text, exc)}") from exc
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("images"), list)
        or not isinstance(data.get("categories"), list)
    ):
        raise TinyVocError(f"{path}: not a COCO file (needs 'images' and 'categories' lists)")
    if need_annotations and not isinstance(data.get("annotations"), list):
        raise TinyVocError(f"{path}: has no 'annotations' list; is this the training file?")
    return data
