"""A real browser: JupyterLab + headless Chromium "Run All" the panel notebook, then use the
panels as a researcher does: move the map slider and the threshold slider, click a heatmap
cell (the pair view changes), export (the written paths appear beside the button), save and
reload the page (the panels come back, still live).

"Run All" is what researchers do: the panel cell then runs right after the set-up cell,
which used to draw the panel before BokehJS had loaded (fixed in ``setup_notebook``).

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); skipped with
the reason otherwise. Everything is bound to 127.0.0.1 with a random token; the server and the
browser are shut down in ``finally`` blocks. Screenshots go to ``$CNNEXPLORE_SCREENSHOTS``
(default: the temporary folder).
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

pytestmark = [pytest.mark.timeout(480)]

FIXTURE = Path(__file__).parent / "fixtures" / "browser_panel.ipynb"
WIDGET_ERRORS = ("Error displaying widget", "Failed to load model class")
# what JupyterLab shows when a widget view fails to build ("Click to show javascript error")
JS_ERRORS = ("javascript error", "Javascript Error")
# per output area, the number of drawn canvases (width and height > 0), shadow roots included
CANVASES = """
const count = (root) => {
  let n = 0;
  for (const el of root.querySelectorAll('*')) {
    if (el.tagName === 'CANVAS' && el.width > 0 && el.height > 0) n += 1;
    if (el.shadowRoot) n += count(el.shadowRoot);
  }
  return n;
};
return Array.from(document.querySelectorAll('.jp-OutputArea-output'), count);
"""
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
        CNNX_FIGURES=str(workdir / "figures"),  # where the panels' export boxes write
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


def _idle(driver) -> bool:
    from selenium.webdriver.common.by import By

    bar = driver.find_element(By.CSS_SELECTOR, ".jp-StatusBar-Widget, #jp-main-statusbar")
    return "| Idle" in bar.text


def _assert_no_widget_error(driver) -> None:
    from selenium.webdriver.common.by import By

    text = driver.find_element(By.TAG_NAME, "body").text
    shown = [e for e in (*WIDGET_ERRORS, *JS_ERRORS) if e.lower() in text.lower()]
    assert not shown, f"the page shows widget errors {shown}"
    # the error placeholder JupyterLab puts in place of a widget view that failed to build
    broken = driver.find_elements(
        By.CSS_SELECTOR, ".jp-OutputArea-output .jupyter-widgets-error-widget"
    )
    assert not broken, f"{len(broken)} widget view(s) failed to render"


def _menu(driver, top: str, item: str) -> None:
    """Click a JupyterLab menu entry (e.g. Run > Run All Cells)."""
    from selenium.webdriver.common.by import By

    bar = f"//div[contains(@class,'lm-MenuBar-itemLabel') and normalize-space(text())='{top}']"
    _wait(lambda: driver.find_elements(By.XPATH, bar), 30, f"the {top!r} menu")[0].click()
    entry = f"//div[contains(@class,'lm-Menu-itemLabel') and normalize-space(text())='{item}']"
    _wait(lambda: driver.find_elements(By.XPATH, entry), 10, f"the {item!r} entry")[0].click()


# the heatmap of the correlation panel: the figure with a Rect glyph; scrolled into view, then
# the canvas and the position (CSS pixels from its top-left corner) of cell (x factor, y factor)
HEAT_CELL = """
const [xf, yf] = arguments;
for (const v of Bokeh.index) {
  if (v.model.type !== "Figure") continue;
  if (!v.model.renderers.some((r) => r.glyph && r.glyph.type === "Rect")) continue;
  const canvas = v.canvas_view.el;
  canvas.scrollIntoView({block: "center"});
  const x = v.frame.x_scale.compute(v.model.x_range.synthetic(xf));
  const y = v.frame.y_scale.compute(v.model.y_range.synthetic(yf));
  const box = canvas.getBoundingClientRect();
  return [canvas, x, y, box.width, box.height];
}
return null;
"""


def _output_with(driver, text: str):
    """The output area whose text contains ``text`` (e.g. a panel's hint line)."""
    from selenium.webdriver.common.by import By

    found = [
        e for e in driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output") if text in e.text
    ]
    return found[0] if found else None


def _selected(output) -> list[str]:
    """Texts of the chosen options of the dropdowns in ``output`` (for the correlation panel:
    measure, statistic, layer of A, layer of B)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    return [
        Select(e).first_selected_option.text for e in output.find_elements(By.TAG_NAME, "select")
    ]


def _click_cell(driver, x_factor: str, y_factor: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    found = _wait(lambda: driver.execute_script(HEAT_CELL, x_factor, y_factor), 30, "the heatmap")
    canvas, x, y, w, h = found
    time.sleep(0.5)  # let the scroll settle
    found = driver.execute_script(HEAT_CELL, x_factor, y_factor)
    canvas, x, y, w, h = found
    ActionChains(driver).move_to_element_with_offset(canvas, x - w / 2, y - h / 2).click().perform()


def _figures_drawn(driver) -> int:
    return sum(n > 0 for n in driver.execute_script(CANVASES))


def _move_slider(driver, output, index: int, steps: int) -> str:
    """Move the ``index``-th slider of ``output`` with the keyboard; return its readout."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    handle = output.find_elements(By.CSS_SELECTOR, ".noUi-handle")[index]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", handle)
    handle.click()
    for _ in range(steps):
        handle.send_keys(Keys.ARROW_RIGHT)
    return handle


@pytest.mark.browser
@pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian chromium and chromium-driver are not installed "
    "(apt-get install -y chromium chromium-driver; .ci/run does this)",
)
def test_panels_live_in_jupyterlab(tmp_path):
    """Run All, move both sliders, click a heatmap cell, export, save, reload, still live."""
    pytest.importorskip("selenium")
    from selenium.webdriver.common.by import By

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
        _wait(lambda: _idle(driver), 90, "the kernel to be idle")
        # "Run All", as researchers do: the panel cell runs right after the setup cell, so
        # the panel is drawn as soon as its output arrives (regression: it used to draw
        # before BokehJS had loaded and showed "Click to show javascript error")
        _menu(driver, "Run", "Run All Cells")
        _wait(lambda: _output_with(driver, "click a heatmap cell"), 120, "the correlation panel")
        _wait(
            lambda: _assert_no_widget_error(driver) or _figures_drawn(driver) >= 3,
            90,
            "the Bokeh figures to be drawn",
        )
        _wait(lambda: _idle(driver), 90, "the kernel to finish the notebook")
        time.sleep(2)  # let BokehJS finish drawing the canvases
        _assert_no_widget_error(driver)
        driver.save_screenshot(str(shots / "cnnexplore_browser_before.png"))

        # 1. the map slider redraws the map browser's figure
        browser_out = _wait(lambda: _output_with(driver, "shared colour scale"), 30, "the browser")
        plot_area = browser_out.find_elements(By.XPATH, ".//*[contains(@class,'bk-Figure')]")[0]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", plot_area)
        before = plot_area.screenshot_as_png
        _move_slider(driver, browser_out, 0, 3)
        _wait(lambda: plot_area.screenshot_as_png != before, 30, "the map to change")
        readout = browser_out.find_elements(By.CSS_SELECTOR, ".widget-readout")
        _wait(lambda: readout[0].text.strip() == "3", 10, "the map readout to show 3")

        # 2. a click on a heatmap cell shows that layer pair's best maps in the pair view
        panel_out = _output_with(driver, "click a heatmap cell")
        shown = _selected(panel_out)
        assert shown[2:4] == ["late", "late"], shown  # the pair view opens on (late, late)
        _click_cell(driver, "early", "early")
        _wait(lambda: _selected(panel_out)[2:4] == ["early", "early"], 30, "the pair to change")
        time.sleep(1)
        driver.save_screenshot(str(shots / "cnnexplore_browser_clicked.png"))
        # a second click on another cell works too (the selection was cleared)
        _click_cell(driver, "late", "early")
        _wait(lambda: _selected(panel_out)[2:4] == ["early", "late"], 30, "the second click")

        # 3. the threshold slider re-derives the statistics (no recomputation)
        _move_slider(driver, panel_out, 0, 5)
        _wait(lambda: "≥ 0.85" in panel_out.text, 30, "the statistics at threshold 0.85")
        _wait(lambda: _idle(driver), 30, "the kernel to process the sliders")

        # 4. export: files in the notebook's figure folder, paths shown beside the button
        button = [b for b in panel_out.find_elements(By.TAG_NAME, "button") if "Export" in b.text]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button[0])
        button[0].click()
        folder = tmp_path / "figures" / "panel"
        _wait(lambda: "correlation.pdf" in panel_out.text, 60, "the export message")
        assert {p.name for p in folder.iterdir()} >= {"correlation.png", "correlation.svg",
                                                       "correlation.pdf"}  # fmt: skip
        assert str(folder / "correlation.png") in panel_out.text
        driver.save_screenshot(str(shots / "cnnexplore_browser_exported.png"))

        # 5. save, reload the page: the panels come back from the running kernel, still live
        _menu(driver, "File", "Save Notebook")
        time.sleep(2)
        driver.refresh()
        _wait(
            lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"),
            90,
            "the notebook to open again",
        )
        _wait(lambda: _output_with(driver, "click a heatmap cell"), 60, "the panel after reload")
        _wait(
            lambda: _assert_no_widget_error(driver) or _figures_drawn(driver) >= 3,
            60,
            "the figures after reload",
        )
        time.sleep(2)
        _assert_no_widget_error(driver)
        driver.save_screenshot(str(shots / "cnnexplore_browser_reloaded.png"))
        browser_out = _output_with(driver, "shared colour scale")
        plot_area = browser_out.find_elements(By.XPATH, ".//*[contains(@class,'bk-Figure')]")[0]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", plot_area)
        before = plot_area.screenshot_as_png
        _move_slider(driver, browser_out, 0, 2)
        _wait(lambda: plot_area.screenshot_as_png != before, 30, "the map to change after reload")
        panel_out = _output_with(driver, "click a heatmap cell")
        _click_cell(driver, "late", "late")
        _wait(lambda: _selected(panel_out)[2:4] == ["late", "late"], 30, "a click after reload")
        _assert_no_widget_error(driver)
    except Exception:
        if driver is not None:
            driver.save_screenshot(str(shots / "cnnexplore_browser_failure.png"))
        raise
    finally:
        if driver is not None:
            driver.quit()
        _stop(lab)


# -- the fix itself, without a browser: what setup_notebook publishes ------------------------
def test_load_now_runs_deferred_loads_at_once():
    from cnnexplore_nb.widgets._base import load_now

    js = "(function(root) {\n  function load_or_wait() {}\n  setTimeout(load_or_wait, 100)\n}(window));"
    bundle = {
        "application/javascript": js,
        "application/vnd.holoviews_load.v0+json": js,
        "text/html": "<p>setTimeout(load_or_wait, 100)</p>",
    }
    out = load_now(bundle)
    for mime in ("application/javascript", "application/vnd.holoviews_load.v0+json"):
        assert "setTimeout" not in out[mime]
        assert out[mime].endswith("  load_or_wait()\n}(window));")
    assert out["text/html"] == bundle["text/html"]  # only scripts are touched
    assert bundle["application/javascript"] == js  # the input is not modified


def _map_titles(client, nb) -> list[str]:
    """Titles of the MapBrowser figures in the widget state saved so far (what a view created
    now, or the saved notebook, starts from)."""
    import json

    client.set_widgets_metadata()
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    found = []

    def walk(obj):
        if isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)
        elif isinstance(obj, str) and obj.startswith("conv · map "):
            found.append(obj)

    for widget in state.values():
        if widget["model_name"] == "BokehModel":
            walk(json.loads(widget["state"]["render_bundle"]))
    return found


@pytest.mark.slow
def test_setup_notebook_loads_bokehjs_synchronously():
    """In a real kernel the setup cell's output holds the full inline BokehJS bundle with its
    load run at once (also after an earlier hv.extension, whose own loader is deferred); a
    panel whose state is set from Python before or after it is displayed shows that state
    in the saved widget state (what a view created later starts from)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    maps = "np.arange(8 * 6 * 6, dtype=float).reshape(1, 8, 6, 6) ** 1.5"
    nb.cells = [
        nbformat.v4.new_code_cell('import holoviews as hv\nhv.extension("bokeh", inline=True)'),
        nbformat.v4.new_code_cell(
            "from cnnexplore_nb.widgets import setup_notebook\nsetup_notebook()"
        ),
        nbformat.v4.new_code_cell(
            "import numpy as np\nfrom cnnexplore_nb.widgets import MapBrowser\n"
            f"browser = MapBrowser({{'conv': {maps}}}, grid=0)\n"
            "browser.map_index = 5\nbrowser"
        ),
        nbformat.v4.new_code_cell("browser.map_index = 6"),
    ]
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3")
    titles = []
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
            if index >= 2:
                titles.append(_map_titles(client, nb))
    assert titles == [["conv · map 5 · image 0"], ["conv · map 6 · image 0"]]
    first, setup = nb.cells[0].outputs, nb.cells[1].outputs
    scripts = [
        o["data"]["application/javascript"]
        for o in setup
        if "application/javascript" in o.get("data", {})
    ]
    # the earlier hv.extension loader is deferred (Panel's template): the reason for the fix
    assert any(
        "setTimeout(load_or_wait" in o.get("data", {}).get("application/javascript", "")
        for o in first
    )
    assert scripts, [list(o.get("data", {})) for o in setup]
    assert not any("setTimeout(load_or_wait" in js for js in scripts)
    full = [i for i, js in enumerate(scripts) if "BEGIN bokeh-widgets" in js]
    assert full, "setup_notebook did not publish the full inline BokehJS bundle"
    assert "load_or_wait()" in scripts[full[0]]
    assert "const js_urls = [];" in scripts[full[0]]  # inline: nothing to download
    # both mime types of a loader carry the same (patched) script
    for o in setup:
        data = o.get("data", {})
        if "application/javascript" in data and "application/vnd.holoviews_load.v0+json" in data:
            assert data["application/javascript"] == data["application/vnd.holoviews_load.v0+json"]


# -- executed notebooks open trusted, and as HTML anywhere -----------------------------------
@pytest.mark.slow
def test_executed_notebooks_are_trusted_and_written_as_html(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    from nbformat.sign import NotebookNotary

    from cnnexplore_nb.notebook.run import executed_dir, run_notebook

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell('SCALE = "embedded"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell('print(f"scale {SCALE}")'),
        nbformat.v4.new_code_cell(
            "import numpy as np\nfrom cnnexplore_nb.widgets import MapBrowser\n"
            "MapBrowser({'conv': np.arange(2 * 16.0).reshape(1, 2, 4, 4)}, grid=0)"
        ),
    ]
    (tmp_path / "notebooks").mkdir()
    source = tmp_path / "notebooks" / "09_tiny.ipynb"
    nbformat.write(nb, source)
    out = run_notebook(source, scale="smoke", output_dir=tmp_path / "executed", timeout=120)
    executed = nbformat.read(out, as_version=4)
    assert NotebookNotary().check_signature(executed)  # JupyterLab shows its outputs
    page = out.with_suffix(".html").read_text()
    assert "scale smoke" in page
    assert "MapBrowser: an interactive panel" in page  # the note, not an empty widget area
    assert "cdn.jsdelivr.net/npm/@jupyter-widgets" not in page  # nothing to fetch online
    mask = os.umask(0o022)
    os.umask(mask)
    assert out.with_suffix(".html").stat().st_mode & 0o777 == 0o666 & ~mask
    folder = executed_dir(tmp_path)  # the default: beside the sources, git-ignored
    assert folder == tmp_path / "notebooks" / "executed"
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"
