"""The detectron2 install path: pinned wheel, pure-Python conversion, idempotence, offline failures."""

import base64
import csv
import hashlib
import io
import os
import subprocess
import sys
import time
import zipfile

import pytest

from tinyvoc.core.errors import TinyVocError
from tinyvoc.runtime import detectron2_install as install


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Convert the pinned sal-detectron2 wheel (cached by the setup; fetched from PyPI otherwise)."""
    source = install.download_source_wheel(install.CACHE_DIR)
    return install.convert_wheel(source, tmp_path_factory.mktemp("wheel"))


def test_converted_wheel_is_pure_python_and_complete(converted):
    assert converted.name == "detectron2-0.7.2+purepy-py3-none-any.whl"
    with zipfile.ZipFile(converted) as whl:
        names = whl.namelist()
        dist = "detectron2-0.7.2+purepy.dist-info"
        assert not [n for n in names if n.endswith(".so") or n.startswith("tools/")]
        assert "detectron2/model_zoo/configs/COCO-InstanceSegmentation/mask_rcnn_X_101_32x8d_FPN_3x.yaml" in names
        wheel_meta = whl.read(f"{dist}/WHEEL").decode()
        assert "Tag: py3-none-any" in wheel_meta and "Root-Is-Purelib: true" in wheel_meta
        metadata = whl.read(f"{dist}/METADATA").decode()
        assert "Name: detectron2\n" in metadata
        requires = [line.split(": ", 1)[1] for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
        assert any(r.startswith("fvcore") for r in requires) and any(r.startswith("iopath") for r in requires)
        assert not any(r.startswith("numpy") for r in requires)
        assert "pkg_resources" not in whl.read("detectron2/model_zoo/model_zoo.py").decode()
        rows = list(csv.reader(io.StringIO(whl.read(f"{dist}/RECORD").decode())))
        assert {r[0] for r in rows} == set(names)
        for name, digest, size in rows:
            if digest:
                data = whl.read(name)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                assert digest == f"sha256={expected}" and int(size) == len(data)


def test_wrong_sha256_is_refused(tmp_path):
    fake = tmp_path / install.SOURCE_WHEEL
    fake.write_bytes(b"not the pinned wheel")
    with pytest.raises(TinyVocError, match="does not match the pinned"):
        install.convert_wheel(fake, tmp_path / "out")


def test_pip_output_names_what_was_added():
    out = "Processing ./d.whl\nSuccessfully installed detectron2-0.7.2+purepy fvcore-0.1.5.post20221221 iopath-0.1.9\n"
    assert install._installed(out) == ["detectron2-0.7.2+purepy", "fvcore-0.1.5.post20221221", "iopath-0.1.9"]
    assert install._installed("Requirement already satisfied: x\n") == []


def test_installed_detectron2_works_and_reinstall_is_skipped():
    assert install.detectron2_status() is None
    assert "nothing to do" in install.ensure_detectron2()
    with pytest.raises(TinyVocError, match="unknown detectron2 install method"):
        install.ensure_detectron2("conda")


def test_model_zoo_works_without_pkg_resources():
    code = (
        "import sys; sys.modules['pkg_resources'] = None\n"
        "from detectron2 import model_zoo\n"
        "print(model_zoo.get_config_file('COCO-InstanceSegmentation/mask_rcnn_X_101_32x8d_FPN_3x.yaml'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("mask_rcnn_X_101_32x8d_FPN_3x.yaml")


def test_offline_download_fails_fast_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    started = time.monotonic()
    with pytest.raises(TinyVocError, match="Could not download sal-detectron2==0.7.2 from PyPI"):
        install.download_source_wheel(tmp_path)
    assert time.monotonic() - started < 120


def fake_pip(monkeypatch, returncode=0, stderr=""):
    """Stand in for the subprocess boundary: every pip call is recorded and answered with ``returncode``."""
    calls = []

    def run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, returncode, stdout="", stderr=stderr)

    monkeypatch.setattr(subprocess, "run", run)  # the one pip wrapper, runtime.wheels.pip, calls it
    return calls


def test_git_method_builds_upstream_at_the_pinned_commit_through_start(tmp_path, monkeypatch, capsys):
    """DETECTRON2_METHOD = "git" reaches start(): the pure-Python wheel installed here is replaced by a git build."""
    from tinyvoc.runtime import project

    assert install.installed_version().endswith("+purepy")
    calls = fake_pip(monkeypatch)
    project.start(str(tmp_path), None, "git")
    assert calls == [
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-build-isolation",
            f"git+{install.UPSTREAM_GIT}@{install.UPSTREAM_COMMIT}",
        ]
    ]
    assert f"built detectron2 from git at {install.UPSTREAM_COMMIT[:12]}" in capsys.readouterr().out
    fake_pip(monkeypatch, returncode=1, stderr="fatal: unable to access 'https://github.com/...'")
    with pytest.raises(TinyVocError, match="Building detectron2 from git\\+https://github.com/facebookresearch"):
        install.ensure_detectron2("git")


def test_wheel_method_that_cannot_download_offers_the_git_method(tmp_path, monkeypatch):
    monkeypatch.setattr(install, "CACHE_DIR", tmp_path / "empty-cache")
    calls = fake_pip(
        monkeypatch, returncode=1, stderr="ERROR: No matching distribution found for sal-detectron2==0.7.2"
    )
    with pytest.raises(TinyVocError) as stop:
        install.ensure_detectron2("wheel", force=True)
    assert calls[0][3:5] == ["download", "--no-deps"] and len(calls) == 1
    message = str(stop.value)
    assert "Could not download sal-detectron2==0.7.2 from PyPI" in message and "No matching distribution" in message
    assert message.endswith(f"Or {install.SWITCH_TO_GIT}.") and 'set DETECTRON2_METHOD = "git"' in message
    assert "nothing to do" in install.ensure_detectron2("wheel")  # the working wheel is kept: no pip call
    assert len(calls) == 1
