"""Which data notebook 01 registers: the project's Tiny VOC files (downloaded on Colab or Kaggle when missing), the
sample, or your own COCO export (a folder or a .zip, ``own_data``). On Kaggle the project's files are the ones found
in the attached inputs (``runtime.kaggle``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import TinyVocError
from ..core.paths import DataFiles
from ..core.table import html_table, text_table
from ..runtime import kaggle, local_data
from ..runtime.project import Project

NAMED = ("auto", "tinyvoc", "sample")


@dataclass
class Source:
    """The data 01 checks and registers: its files on this runtime, its kind, and for your own data what was found
    (the layout, what resolving names and classes said) and what staging it again needs (``own``)."""

    files: DataFiles
    source: str  # "tinyvoc", "sample", or "own"
    layout: str = ""
    problems: list = field(default_factory=list)
    own: dict = field(default_factory=dict)

    def rows(self) -> list[tuple[str, str]]:
        rows = [("data", self.own.get("origin") or self.source)]
        if self.layout:
            rows.append(("layout", self.layout))
        rows += [(name, str(path)) for name, path in vars(self.files).items() if path is not None]
        return rows

    def __repr__(self) -> str:
        return text_table("Dataset files", self.rows())

    def _repr_html_(self) -> str:
        return html_table("Dataset files", self.rows())


def dataset_source(
    project: Project,
    dataset: str = "auto",
    download: bool = True,
    test_images: str = "",
    crowd_as_objects: bool = False,
    keep_empty_images: bool = False,
) -> Source:
    """``DATASET`` as notebook 01 reads it: a name (``dataset_files``) or the path of your own COCO export.

    A relative path is taken from the project folder (``data/my-export.zip``); ``TEST_IMAGES`` (a folder of images
    without json) and the two crowd/empty settings apply to your own data only.
    """
    if dataset in NAMED:
        if test_images:
            raise TinyVocError(f"TEST_IMAGES is for your own data; DATASET {dataset!r} has its own test set")
        files, source = dataset_files(project, dataset, download)
        return Source(files, source)
    from .own_data import dataset_name, prepare

    origin = _path(project, dataset)
    test_origin = _path(project, test_images) if test_images else None
    prepared = prepare(origin, project.data_dir, test_images=test_origin, crowd_as_objects=crowd_as_objects)
    own = {
        "name": dataset_name(origin),
        "origin": str(origin),
        "test_origin": str(test_origin or ""),
        "crowd_as_objects": crowd_as_objects,
        "keep_empty_images": keep_empty_images,
    }
    return Source(prepared.files, "own", prepared.layout.describe(), prepared.problems, own)


def _path(project: Project, given: str | os.PathLike) -> Path:
    path = Path(os.path.expanduser(str(given)))
    return path if path.is_absolute() else project.root / path


def dataset_files(project: Project, dataset: str = "auto", download: bool = True) -> tuple[DataFiles, str]:
    """Pick the course data notebook 01 registers: ``tinyvoc`` (the project's data), ``sample``, or ``auto``.

    ``sample`` (the generated dataset) only when asked for by name, except off Colab and Kaggle, where
    ``auto`` with no data uses it and says so. On Colab missing data is downloaded into the project folder
    when ``download`` is on (the course files, by Drive file id), else the notebook stops; on Kaggle the
    same, into the session's scratch folder, and either way the message says which input to attach.
    """
    if dataset not in NAMED:
        raise TinyVocError(f"unknown DATASET {dataset!r}; use 'auto', 'tinyvoc', 'sample' or your export's path")
    if dataset == "sample":
        from .sample import make_sample_dataset

        return DataFiles.in_folder(make_sample_dataset(project.data_dir / "sample")), "sample"
    if not local_data.present(project.stored_data):
        if dataset == "auto" and not project.hosted:
            print(f"No Tiny VOC files in {project.stored_data}: using the built-in sample dataset (data/README.md).")
            return dataset_files(project, "sample")
        if not download and project.on_kaggle:
            raise TinyVocError(
                f"Tiny VOC files not found in the attached inputs. {kaggle.ATTACH_DATA}; or set DOWNLOAD_DATA = True "
                "with Internet on. Nothing was written."
            )
        if not download:
            raise TinyVocError(
                f"Tiny VOC files not found in {project.stored_data}: put pascal_train.json, test.json, "
                "train_images.zip (or train_images/) and test_images.zip (or test_images/) there, or set "
                "DOWNLOAD_DATA = True; DATASET = 'sample' trains on the generated sample instead. Nothing was written."
            )
        from .download import fetch_course_files

        try:
            fetch_course_files(project.stored_data)
        except TinyVocError as exc:
            if not project.on_kaggle:
                raise
            raise TinyVocError(f"{exc}\nOn Kaggle, instead: {kaggle.ATTACH_DATA}.") from None
    return local_data.make_local(project.stored_data, project.data_dir), "tinyvoc"
