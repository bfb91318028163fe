"""Which data notebook 01 registers: the project's Tiny VOC files (downloaded on Colab or Kaggle when missing) or the
sample. On Kaggle the project's files are the ones found in the attached inputs (``runtime.kaggle``)."""

from __future__ import annotations

from ..core.errors import TinyVocError
from ..core.paths import DataFiles
from ..runtime import kaggle, local_data
from ..runtime.project import Project


def dataset_files(project: Project, dataset: str = "auto", download: bool = True) -> tuple[DataFiles, str]:
    """Pick the data notebook 01 registers: ``tinyvoc`` (the project's data), ``sample``, or ``auto``.

    ``sample`` (the generated dataset) only when asked for by name, except off Colab and Kaggle, where
    ``auto`` with no data uses it and says so. On Colab missing data is downloaded into the project folder
    when ``download`` is on (the course files, by Drive file id), else the notebook stops; on Kaggle the
    same, into the session's scratch folder, and either way the message says which input to attach.
    """
    if dataset not in ("auto", "tinyvoc", "sample"):
        raise TinyVocError(f"unknown DATASET {dataset!r}; use 'auto', 'tinyvoc' or 'sample'")
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
