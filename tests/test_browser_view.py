"""A real browser: JupyterLab with headless Chromium runs notebook 04, moves the slider, sees the picture change.

JupyterLab and its widget front end come from the lock (requirements.txt); Chromium and its driver
are Debian's ``chromium`` and ``chromium-driver``, which ``bash .ci/run`` installs (``make
browser``). The browser is driven through chromedriver's W3C WebDriver API over loopback HTTP, so no
driver package is needed. Notebook 04 runs unchanged in JupyterLab's kernel, with ``PROJECT_DIR``
injected as papermill injects it; the kernel sees a front end, so the last cell shows the view.
"""

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from tinyvoc.core.paths import notebooks_dir

from ._processes import start, stop_tree

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
NOTEBOOK = "04_export_submission.ipynb"
SCREENSHOT_ENV = "TINYVOC_VIEW_SCREENSHOT"  # where to keep a picture of the view (the README's)

# Skipped on a developer's machine without them, saying how to get them; never in CI, which installs them: there a
# missing browser fails the test rather than hiding it.
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()) and not os.environ.get("CI"),
    reason="Debian's chromium and chromium-driver are not installed: `make browser` (run by .ci/run) installs them",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(method: str, url: str, body=None, timeout: float = 120):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{method} {url}: {exc.code} {exc.read()[:500]!r}") from None


def _wait_for(what: str, check, seconds: float, every: float = 0.25):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(every)


class Browser:
    """Just enough of the W3C WebDriver protocol: open a page, run a script, send keys, take screenshots."""

    def __init__(self, driver: str, profile: Path):
        args = [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--window-size=1300,1900",
        ]  # fmt: skip
        options = {"binary": str(CHROMIUM), "args": args}
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}}
        self.base = f"{driver}/session/{_http('POST', f'{driver}/session', caps)['value']['sessionId']}"

    def open(self, url: str) -> None:
        _http("POST", f"{self.base}/url", {"url": url})

    def js(self, script: str, *args):
        return _http("POST", f"{self.base}/execute/sync", {"script": script, "args": list(args)})["value"]

    def element(self, css: str) -> dict:
        """The first element matching ``css``, as WebDriver names it (and as a script argument)."""
        return _http("POST", f"{self.base}/element", {"using": "css selector", "value": css})["value"]

    def keys(self, element: dict, text: str) -> None:
        _http("POST", f"{self.base}/element/{_id(element)}/value", {"text": text})

    def click(self, element: dict) -> None:
        _http("POST", f"{self.base}/element/{_id(element)}/click", {})

    def screenshot(self, element: dict) -> bytes:
        return base64.b64decode(_http("GET", f"{self.base}/element/{_id(element)}/screenshot")["value"])

    def close(self) -> None:
        _http("DELETE", self.base)


def _id(element: dict) -> str:
    return next(iter(element.values()))


def _start(cmd: list[str], log: Path, env=None) -> subprocess.Popen:
    with log.open("wb") as out:  # the child holds its own copy of the descriptor
        return start(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


@pytest.fixture
def lab_with_04(trained_sample, tmp_path):
    """JupyterLab serving a copy of notebook 04 whose PROJECT_DIR is a copy of the trained sample project."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    project = tmp_path / "project"
    shutil.copytree(trained_sample.root, project / "output")
    served = tmp_path / "served"
    served.mkdir()
    book = parameterize_notebook(load_notebook_node(str(notebooks_dir() / NOTEBOOK)), {"PROJECT_DIR": str(project)})
    nbformat.write(book, served / NOTEBOOK)
    port, home = _free_port(), tmp_path / "home"
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "IPYTHONDIR": str(home / "ipython"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
    }
    env.pop("JPY_SESSION_NAME", None)
    news = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false"}))  # no "get notified about news?" toast over the view
    started = []  # stopped in the teardown whatever happens: a missing chromedriver, a timeout, a failed check
    try:
        started.append(
            _start(
                [
                    sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
                    "--ip=127.0.0.1", f"--ServerApp.root_dir={served}", "--IdentityProvider.token=",
                    "--ServerApp.password=", "--LabApp.expose_app_in_browser=True",
                    "--ServerApp.disable_check_xsrf=True",
                ],
                tmp_path / "lab.log", env,
            )
        )  # fmt: skip
        driver_port = _free_port()
        started.append(_start([str(CHROMEDRIVER), f"--port={driver_port}"], tmp_path / "chromedriver.log"))
        url = f"http://127.0.0.1:{port}"
        _wait_for("JupyterLab to answer", lambda: _answers(f"{url}/api/status"), 180)
        driver_url = f"http://127.0.0.1:{driver_port}"
        _wait_for("chromedriver", lambda: _answers(f"{driver_url}/status"), 30)
        yield url, driver_url, project, tmp_path
    finally:
        for process in reversed(started):  # chromedriver (and its Chromium), then JupyterLab and its kernel
            stop_tree(process)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


KERNEL_IDLE = """
const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
return k ? k.status : null;
"""
ERRORS = """
return Array.from(document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
  .map(e => e.innerText).filter(t => /Error|Traceback/.test(t)).join('\\n');
"""


def test_jupyterlab_runs_04_and_the_slider_changes_the_picture(lab_with_04):
    url, driver_url, project, tmp_path = lab_with_04
    browser = Browser(driver_url, tmp_path / "chromium-profile")
    try:
        browser.open(f"{url}/lab/tree/{NOTEBOOK}")
        _wait_for("the notebook's kernel", lambda: browser.js(KERNEL_IDLE) == "idle", 300)
        browser.js("window.jupyterapp.commands.execute('notebook:run-all-cells');")

        def view_drawn():
            errors = browser.js(ERRORS)
            assert not errors, errors
            return browser.js("return document.querySelectorAll('.jp-OutputArea img.widget-image').length") > 0

        _wait_for("the view's picture", view_drawn, 600, every=0.5)  # about 20 s on a quiet machine
        picture = browser.element(".jp-OutputArea img.widget-image")
        summary = browser.element(".jp-OutputArea .widget-html")
        before = hashlib.sha256(browser.screenshot(picture)).hexdigest()
        text_before = browser.js("return arguments[0].innerText", summary)
        assert "validation mask AP50" in text_before and "score >= 0.05" in text_before, text_before
        if os.environ.get(SCREENSHOT_ENV):
            view = browser.element(".jp-OutputArea .widget-vbox")
            Path(os.environ[SCREENSHOT_ENV]).write_bytes(browser.screenshot(view))

        handle = browser.element(".jp-OutputArea .widget-slider .noUi-handle")
        browser.keys(handle, "\ue014" * 10)  # ArrowRight: half a decade up, 0.05 -> about 0.16
        _wait_for(
            "the summary to follow the slider",
            lambda: browser.js("return arguments[0].innerText", summary) != text_before,
            120,
        )
        _wait_for(
            "the picture to change",
            lambda: hashlib.sha256(browser.screenshot(picture)).hexdigest() != before,
            120,
        )
        shown = browser.js("return arguments[0].innerText", summary).split(":")[0]
        threshold = float(shown.split(">=")[1].split(",")[0])
        assert 0.1 < threshold < 0.3, shown

        submission = project / "output" / "submission.json"
        written_before = submission.stat().st_mtime_ns
        browser.click(browser.element(".jp-OutputArea .widget-button"))
        _wait_for("the button's export", lambda: submission.stat().st_mtime_ns != written_before, 120)
        rows = json.loads(submission.read_text())
        assert rows and min(r["score"] for r in rows) >= threshold - 1e-9
        said = _wait_for("the export's report", lambda: "VALID" in browser.js("return document.body.innerText"), 120)
        assert said
    finally:
        browser.close()
