"""A real browser: JupyterLab + headless Chromium run the panel notebook, move the slider.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); skipped with
the reason otherwise. Everything is bound to 127.0.0.1 with a random token; the server and the
browser are shut down in ``finally`` blocks.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

FIXTURE = Path(__file__).parent / "fixtures" / "browser_panel.ipynb"
WIDGET_ERRORS = ("Error displaying widget", "Failed to load model class")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = (
    "/usr/bin/chromedriver"
    if os.path.exists("/usr/bin/chromedriver")
    else shutil.which("chromedriver")
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def _start_lab(workdir: Path, port: int, token: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(workdir / "config"),
        JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
        JUPYTERLAB_WORKSPACES_DIR=str(workdir / "workspaces"),
        JUPYTERLAB_SETTINGS_DIR=str(workdir / "settings"),
    )
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={workdir / 'nb'}",
        "--ServerApp.port_retries=0", "--LabApp.news_url=None",
        "--LabServerApp.extra_labextensions_path=[]",
    ]  # fmt: skip
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    with open(workdir / "lab.log", "wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _server_up(port: int, token: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2):
            return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)  # the server's own session: kernels go too
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _driver(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    return driver


def _menu(driver, top: str, item: str) -> None:
    """Click a JupyterLab menu entry (e.g. Run > Run All Cells)."""
    from selenium.webdriver.common.by import By

    bar = f"//div[contains(@class,'lm-MenuBar-itemLabel') and normalize-space(text())='{top}']"
    _wait(lambda: driver.find_elements(By.XPATH, bar), 30, f"the {top!r} menu")[0].click()
    entry = f"//div[contains(@class,'lm-Menu-itemLabel') and normalize-space(text())='{item}']"
    _wait(lambda: driver.find_elements(By.XPATH, entry), 10, f"the {item!r} entry")[0].click()


@pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian chromium and chromium-driver are not installed "
    "(apt-get install -y chromium chromium-driver; .ci/run does this)",
)
def test_slider_redraws_plot_in_jupyterlab(tmp_path):
    pytest.importorskip("selenium")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    (tmp_path / "nb").mkdir()
    shutil.copy(FIXTURE, tmp_path / "nb" / "panel.ipynb")
    port, token = _free_port(), uuid.uuid4().hex
    lab = _start_lab(tmp_path, port, token)
    driver = None
    shots = Path(os.environ.get("CNNEXPLORE_SCREENSHOTS", tempfile.gettempdir()))
    try:
        _wait(lambda: _server_up(port, token) or lab.poll() is not None, 60, "JupyterLab to start")
        assert lab.poll() is None, (tmp_path / "lab.log").read_text()[-3000:]
        driver = _driver(tmp_path / "profile")
        driver.get(f"http://127.0.0.1:{port}/lab/tree/panel.ipynb?token={token}")
        _wait(
            lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"),
            90,
            "the notebook to open",
        )
        _wait(
            lambda: (
                "| Idle"
                in driver.find_element(
                    By.CSS_SELECTOR, ".jp-StatusBar-Widget, #jp-main-statusbar"
                ).text
            ),
            90,
            "the kernel to be idle",
        )
        # run the setup cell, wait until BokehJS is loaded in the page, then the panel cell
        # (with "Run All" a widget can render before BokehJS finished loading)
        driver.find_elements(By.CSS_SELECTOR, ".jp-Cell .jp-InputArea-editor")[0].click()
        driver.switch_to.active_element.send_keys(Keys.SHIFT, Keys.ENTER)
        _wait(
            lambda: driver.execute_script("return typeof window.Bokeh !== 'undefined'"),
            60,
            "BokehJS to load in the page",
        )
        driver.switch_to.active_element.send_keys(Keys.SHIFT, Keys.ENTER)
        handle = _wait(
            lambda: driver.find_elements(By.CSS_SELECTOR, ".noUi-handle"), 90, "the map slider"
        )[0]
        output = _wait(
            lambda: [
                e
                for e in driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output")
                if e.find_elements(By.CSS_SELECTOR, ".noUi-handle")
            ],
            30,
            "the panel output",
        )[0]
        # the Bokeh figure's host element (found by XPath: BokehJS styles live in shadow roots)
        figure = "//*[contains(@class,'jp-OutputArea-output')]//*[contains(@class,'bk-Figure')]"
        plot_area = _wait(lambda: driver.find_elements(By.XPATH, figure), 60, "the Bokeh figure")[0]
        _wait(
            lambda: plot_area.size["width"] > 100 and plot_area.size["height"] > 100,
            30,
            "the Bokeh figure to get a size",
        )
        time.sleep(3)  # let BokehJS draw the canvas
        before = plot_area.screenshot_as_png
        driver.save_screenshot(str(shots / "cnnexplore_browser_before.png"))
        handle.click()
        for _ in range(3):
            handle.send_keys(Keys.ARROW_RIGHT)
        changed = _wait(lambda: plot_area.screenshot_as_png != before, 30, "the plot to change")
        assert changed
        driver.save_screenshot(str(shots / "cnnexplore_browser_after.png"))
        text = driver.find_element(By.TAG_NAME, "body").text
        for err in WIDGET_ERRORS:
            assert err not in text
        readout = output.find_elements(By.CSS_SELECTOR, ".widget-readout")
        assert readout and readout[0].text.strip() == "3"
    except Exception:
        if driver is not None:
            driver.save_screenshot(str(shots / "cnnexplore_browser_failure.png"))
        raise
    finally:
        if driver is not None:
            driver.quit()
        _stop(lab)
