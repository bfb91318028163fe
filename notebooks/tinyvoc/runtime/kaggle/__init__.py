"""Kaggle, detected and handled in one place: its session and folders, the course files among the inputs,
earlier notebooks' outputs brought in.

A Kaggle notebook runs in its own session: only ``/kaggle/working`` is kept, and everything else it needs
(the course files, what earlier notebooks saved) is attached read-only under ``/kaggle/input``. Each of
those jobs is a module of its own:

* ``session``: whether this is Kaggle, its run type, its folders and what to tell a user to attach;
* ``inputs``: files found among the inputs, the course files staged on the scratch disk (with
  ``local_data.stage``, the routine Colab's local copy uses);
* ``earlier``: earlier notebooks' ``output/`` folders and runs, found among the inputs and ranked;
* ``bring_in``: the files 02, 03 and 04 need from those, copied into ``/kaggle/working/output``.

Callers write ``from tinyvoc.runtime import kaggle`` and ``kaggle.X``: the names below are what the rest of
the package, the notebooks and the tests use.
"""

from .bring_in import bring_in_for_training, bring_in_trained_run
from .earlier import EarlierOutput, EarlierRun, attached_runs, find_outputs
from .inputs import STAGED_MARKER, CourseFiles, find_course_files, find_input_file, stage_course_files
from .session import (
    ATTACH_DATA,
    ROOT_ENV,
    RUN_TYPE_ENV,
    attach_output,
    input_root,
    is_batch,
    on_kaggle,
    root,
    run_type,
    scratch_data_dir,
    working_dir,
)

__all__ = [
    "ATTACH_DATA",
    "ROOT_ENV",
    "RUN_TYPE_ENV",
    "STAGED_MARKER",
    "CourseFiles",
    "EarlierOutput",
    "EarlierRun",
    "attach_output",
    "attached_runs",
    "bring_in_for_training",
    "bring_in_trained_run",
    "find_course_files",
    "find_input_file",
    "find_outputs",
    "input_root",
    "is_batch",
    "on_kaggle",
    "root",
    "run_type",
    "scratch_data_dir",
    "stage_course_files",
    "working_dir",
]
