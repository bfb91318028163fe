"""One exception type for problems a user can fix.

Notebooks and the CLI show its message as is, without a traceback from deep inside detectron2,
so every raise site must say which file or notebook is involved and what to do about it.
"""


class TinyVocError(RuntimeError):
    """A problem with the user's files, order of steps or environment, explained in plain words."""
