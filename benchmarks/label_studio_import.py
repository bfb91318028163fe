"""Not a speed check: the pre-labels' Label Studio tasks through a real Label Studio, in and back out as COCO.

Label Studio cannot be installed beside the project (Django and its own pins), so this runs in a venv of its own,
inside Label Studio's own Django shell, with the ``output/prelabels/`` folder that 04 (or ``tinyvoc predict``)
wrote (``PRELABELS``, and ``SPLIT``: ``test`` unless set):

    python3 -m venv /tmp/ls && /tmp/ls/bin/pip install label-studio "sentry-sdk<3"
    export LABEL_STUDIO_BASE_DATA_DIR=/tmp/ls-data
    /tmp/ls/bin/label-studio init --username t@t.io --password secret123
    export LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=data/sample/test_images
    echo 'exec(open("benchmarks/label_studio_import.py").read())' | PRELABELS=output/prelabels \
        /tmp/ls/bin/label-studio shell

It creates a project from ``label-studio.xml``, imports ``<split>.label-studio.json`` through Label Studio's own
import endpoint (as the web page's Import does), gives the project a Local files storage of the images folder
and asks for every task's image (when the local-files variables are set), turns the predictions into
annotations (the Data Manager's "Create Annotations From Predictions"), exports the project as COCO and
compares every exported polygon with the pre-label file's (``<split>.json``): same images, classes and points.
Printed: the counts, the images served and the largest difference in pixels. (``sentry-sdk<3``: label-studio
1.23.2 does not start with sentry-sdk 3.)
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path


def main() -> None:
    folder, split = Path(os.environ["PRELABELS"]), os.environ.get("SPLIT", "test")
    import label_studio
    from rest_framework.test import APIClient
    from tasks.models import Prediction
    from users.models import User

    client = APIClient()
    client.force_authenticate(User.objects.order_by("id").first())
    client.defaults["HTTP_HOST"] = "localhost"
    config = (folder / "label-studio.xml").read_text()
    project = client.post("/api/projects", {"title": f"tinyvoc {split}", "label_config": config}, format="json")
    pid = project.data["id"]
    tasks = json.loads((folder / f"{split}.label-studio.json").read_text())
    imported = client.post(f"/api/projects/{pid}/import", tasks, format="json")
    print(f"label-studio {label_studio.__version__}: import {imported.status_code}, "
          f"{imported.data['task_count']} tasks, {imported.data['prediction_count']} predictions, "
          f"{sum(len(p.result) for p in Prediction.objects.filter(project_id=pid))} regions")  # fmt: skip
    made = client.post(f"/api/dm/actions?id=predictions_to_annotations&project={pid}",
                       {"selectedItems": {"all": True, "excluded": []}}, format="json")  # fmt: skip
    print(f"predictions to annotations: {made.status_code} {made.data.get('detail')}")
    root = os.environ.get("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT")
    if root:  # the images, served as docs/your-data.md says: local files on, a Local files storage on the project
        from io_storages.localfiles.models import LocalFilesImportStorage

        LocalFilesImportStorage.objects.create(project_id=pid, path=str(Path(root).resolve()), title="images")
        served = [client.get(task["data"]["image"]).status_code for task in tasks]
        print(f"images served: {served.count(200)} of {len(served)}")
    exported = client.get(f"/api/projects/{pid}/export?exportType=COCO")
    body = b"".join(exported.streaming_content) if exported.streaming else exported.content
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        coco = json.loads(archive.read("result.json"))
    compare(json.loads((folder / f"{split}.json").read_text()), coco)


def compare(ours: dict, theirs: dict) -> None:
    """Every polygon of ``ours`` (the pre-labels) found in ``theirs`` (Label Studio's export): image by file name,
    class by name, points within 0.05 px."""
    name_of = {c["id"]: c["name"] for c in ours["categories"]}
    their_name = {c["id"]: c["name"] for c in theirs["categories"]}
    file_of = {im["id"]: Path(im["file_name"]).name for im in ours["images"]}
    their_file = {im["id"]: im["file_name"].split("d=")[-1].split("/")[-1] for im in theirs["images"]}
    exported: dict = {}
    for a in theirs["annotations"]:
        key = (their_file[a["image_id"]], their_name[a["category_id"]])
        exported.setdefault(key, []).extend(a["segmentation"])
    polygons = found = holes = 0
    worst = 0.0
    for a in ours["annotations"]:
        if isinstance(a["segmentation"], dict):
            holes += 1  # written as RLE in COCO; Label Studio gets the outline (compared by count only)
            continue
        candidates = exported.get((file_of[a["image_id"]], name_of[a["category_id"]]), [])
        for polygon in a["segmentation"]:
            polygons += 1
            diffs = [max(abs(x - y) for x, y in zip(polygon, c)) for c in candidates if len(c) == len(polygon)]
            if diffs and min(diffs) <= 0.05:
                found += 1
                worst = max(worst, min(diffs))
    print(
        f"pre-label polygons {polygons}, found in Label Studio's COCO export {found} (largest difference "
        f"{worst:.3f} px); masks with holes {holes}; exported polygons {sum(len(v) for v in exported.values())}"
    )


main()  # run inside Label Studio's shell (its apps import only there), see above
