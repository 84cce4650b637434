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

pytestmark = [pytest.mark.timeout(720)]

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
    from selenium.common.exceptions import WebDriverException

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except WebDriverException:  # a busy page (script timeout) or a view being replaced
            value = None
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
    # save the widget state with the notebook (what a reopened notebook starts from)
    manager = workdir / "settings" / "@jupyter-widgets" / "jupyterlab-manager"
    manager.mkdir(parents=True, exist_ok=True)
    (manager / "plugin.jupyterlab-settings").write_text('{"saveState": true}')
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
    # requests (see _offsite) and the console (shown when the test fails)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(120)  # a loaded machine runs the page's scripts slowly
    return driver


def _offsite(driver) -> list[str]:
    """URLs the page requested from anywhere but the local server (a CDN, ...) since the
    last call (Chromium's performance log)."""
    import json

    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") != "Network.requestWillBeSent":
            continue
        url = message["params"]["request"]["url"]
        local = url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:"))
        if url.startswith(("http:", "https:", "ws:", "wss:", "//")) and not local:
            urls.append(url)  # (chrome://, data: and blob: URLs are the browser's own)
    return urls


def _idle(driver) -> bool:
    from selenium.webdriver.common.by import By

    bar = driver.find_element(By.CSS_SELECTOR, ".jp-StatusBar-Widget, #jp-main-statusbar")
    return "| Idle" in bar.text


def _assert_no_widget_error(driver) -> None:
    from selenium.webdriver.common.by import By

    text = driver.execute_script("return document.body.innerText")
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


# the share of the heatmap's plot area painted (not white or transparent) on its canvas: the
# pixels themselves, not the model (a reloaded page once drew titles, colour bar and
# numbers right around an empty plot area)
HEAT_PAINTED = """
for (const v of Bokeh.index) {
  if (v.model.type !== "Figure" || !v.el.isConnected) continue;
  if (!v.model.renderers.some((r) => r.glyph && r.glyph.type === "Rect")) continue;
  if (arguments[0]) v.canvas_view.el.scrollIntoView({block: "center"});  // as a reader would
  const canvas = v.canvas_view.primary.canvas;
  const ratio = canvas.width / v.canvas_view.bbox.width;
  const b = v.frame.bbox;
  const [x, y] = [Math.round(b.left * ratio), Math.round(b.top * ratio)];
  const [w, h] = [Math.round(b.width * ratio), Math.round(b.height * ratio)];
  if (w < 1 || h < 1) return -1;  // not laid out
  const d = canvas.getContext("2d").getImageData(x, y, w, h).data;
  let painted = 0;
  for (let k = 0; k < d.length; k += 4)
    if (d[k + 3] > 0 && (d[k] < 235 || d[k + 1] < 235 || d[k + 2] < 235)) painted += 1;
  return painted / (w * h);
}
return null;
"""


def _heat_painted(driver, when: str) -> None:
    """The heatmap's cells are painted on its canvas (within 15 s)."""
    share = [None]

    def painted() -> bool:
        share[0] = driver.execute_script(HEAT_PAINTED, True)
        return share[0] is not None and share[0] > 0.5

    try:
        _wait(painted, 15, "the heatmap's cells to be painted")
    except TimeoutError:
        raise AssertionError(
            f"{when}: the heatmap's plot area is {share[0]!r} painted (expected > 0.5): "
            "the canvas is blank although the figure's model holds the cells"
        ) from None


def _output_with(driver, text: str):
    """The output area whose text contains ``text`` (e.g. a panel's hint line)."""
    return driver.execute_script(
        "for (const e of document.querySelectorAll('.jp-OutputArea-output'))"
        "  if (e.textContent.includes(arguments[0])) return e;"
        "return null;",
        text,
    )


def _text(driver, output) -> str:
    return driver.execute_script("return arguments[0].textContent", output)


def _selected(output) -> list[str]:
    """Texts of the chosen options of the dropdowns in ``output`` (for the correlation panel:
    measure, statistic, layer of A, layer of B)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    return [
        Select(e).first_selected_option.text for e in output.find_elements(By.TAG_NAME, "select")
    ]


def _click_cell(driver, x_factor: str, y_factor: str) -> None:
    """Click a heatmap cell as a mouse does (again if the figure was re-sent meanwhile: a
    figure changed in the browser is re-sent whole once the events stop, a new element)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.action_chains import ActionChains

    for attempt in range(3):
        _wait(lambda: driver.execute_script(HEAT_CELL, x_factor, y_factor), 30, "the heatmap")
        time.sleep(0.5)  # let the scroll settle
        canvas, x, y, w, h = driver.execute_script(HEAT_CELL, x_factor, y_factor)
        try:
            chain = ActionChains(driver).move_to_element_with_offset(canvas, x - w / 2, y - h / 2)
            chain.click().perform()
            return
        except StaleElementReferenceException:
            if attempt == 2:
                raise


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


# what each output area draws: per output, the Bokeh figures (title, outline colour, colour
# bar titles) and the heatmap labels (text, colour, whether a selection fades them)
DRAWN = """
const outs = Array.from(document.querySelectorAll('.jp-OutputArea-output'));
const drawn = outs.map(() => []);
for (const root of Bokeh.index) {
  if (!root || !root.el || !root.el.isConnected) continue;
  const i = outs.indexOf(root.el.closest('.jp-OutputArea-output'));
  if (i < 0) continue;
  const stack = [root];
  const seen = new Set();
  while (stack.length) {
    const v = stack.pop();
    if (seen.has(v)) continue;
    seen.add(v);
    const m = v.model;
    if (m.type === "Figure") {
      const around = [...m.right, ...m.left, ...m.center, ...m.above, ...m.below];
      const labels = [];
      for (const r of m.renderers) {
        if (!r.glyph || r.glyph.type !== "Text") continue;
        const d = r.data_source.data;
        const field = r.glyph.text_color.field;
        for (let k = 0; k < d.text.length; k++) {
          labels.push([String(d.text[k]), field ? String(d[field][k]) : String(r.glyph.text_color.value),
                       r.nonselection_glyph == null]);
        }
      }
      drawn[i].push({
        title: m.title ? m.title.text : "",
        outline: m.outline_line_color,
        colorbars: around.filter((a) => a.type === "ColorBar").map((a) => a.title),
        labels: labels,
      });
    }
    for (const c of v.children()) stack.push(c);
  }
}
return drawn;
"""


def _drawn(driver, output) -> list[dict]:
    """The Bokeh figures drawn in ``output`` (see ``DRAWN``)."""
    from selenium.webdriver.common.by import By

    outputs = driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output")
    return driver.execute_script(DRAWN)[outputs.index(output)]


def _map_title(driver) -> str:
    """Title of the map browser's selected map, as drawn (its first figure)."""
    try:
        titles = [f["title"] for f in _drawn(driver, _outputs(driver)["browser"])]
        return next(t for t in titles if t.endswith(" · image 0"))
    except Exception:  # noqa: BLE001 - a view being replaced: try again
        return ""


def _readouts(output) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text.strip() for e in output.find_elements(By.CSS_SELECTOR, ".widget-readout")]


def _int_inputs(output) -> list[int]:
    """Values of the integer boxes of ``output`` (the pair view's map numbers)."""
    from selenium.webdriver.common.by import By

    boxes = output.find_elements(By.CSS_SELECTOR, ".widget-inline-hbox input[type=number]")
    return [int(e.get_attribute("value")) for e in boxes]


def _outputs(driver) -> dict:
    """The fixture's outputs by cell (re-found after a redraw or a reload)."""
    cells = {"browser": 1, "panel": 2, "controls": 4, "teaching": 5}
    found = driver.execute_script(
        "const cells = document.querySelectorAll('.jp-Notebook .jp-Cell');"
        "return arguments[0].map((i) => cells[i] && cells[i].querySelector("
        "'.jp-OutputArea-output'));",
        list(cells.values()),
    )
    return dict(zip(cells, found))


def _controls(driver) -> dict:
    """What the controls of every panel say, read from the page."""
    out = _outputs(driver)
    readouts = _readouts(out["browser"])
    layers = _selected(out["panel"])
    maps = _int_inputs(out["panel"])
    return {
        "layer": _selected(out["browser"])[0],
        "map": int(readouts[0]),
        "threshold": float(_readouts(out["panel"])[0]),
        "pair": (layers[2], maps[0], layers[3], maps[1]),
        "wave": int(_readouts(out["controls"])[0]),
        "W": int(_readouts(out["teaching"])[0]),
    }


def _expected_titles(state: dict) -> dict:
    """The figure texts that ``state`` (from ``_controls``) must show."""
    from cnnexplore_nb.plots.names import statistic_name

    la, ma, lb, mb = state["pair"]
    return {
        "main": f"{state['layer']} · map {state['map']} · image 0",
        "tile": f"map {state['map']}",
        "colorbar": statistic_name("percent", threshold=state["threshold"], measure="pearson"),
        "pair": (f"CNN (A) · map {ma}\n{la}", f"CNN (B) · map {mb}\n{lb}"),
        "wave": f"wave {state['wave']}",
    }


def _check_drawn(driver, state, when: str, timeout: float = 60) -> None:
    """What the page draws comes to match what its controls say (``when`` names the
    moment; ``state`` is the controls' dict, or a callable reading them). A loaded machine
    may take seconds to draw a re-sent figure: the check is repeated until ``timeout``,
    then its last failure is raised."""
    from selenium.common.exceptions import WebDriverException

    deadline = time.monotonic() + timeout
    while True:
        try:
            return _check_drawn_once(driver, state() if callable(state) else state, when)
        except (AssertionError, WebDriverException):
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _check_drawn_once(driver, state: dict, when: str) -> None:
    """What the page draws matches what its controls say, now."""
    from cnnexplore_nb.plots import STYLE

    want = _expected_titles(state)
    out = _outputs(driver)
    browser = _drawn(driver, out["browser"])
    titles = [f["title"] for f in browser]
    assert want["main"] in titles, (when, want["main"], titles)
    framed = [f["title"] for f in browser if f["outline"] == STYLE["highlight_color"]]
    assert framed == [want["tile"]], (when, "framed tiles", framed, want["tile"])
    panel = _drawn(driver, out["panel"])
    bars = [b for f in panel for b in f["colorbars"]]
    assert bars == [want["colorbar"]], (when, bars, want["colorbar"])
    titles = [f["title"] for f in panel]
    for part in want["pair"]:
        assert part in titles, (when, part, titles)
    labels = [lab for f in panel for lab in f["labels"]]
    assert labels and all(kept for _, _, kept in labels), (when, "a click fades the numbers")
    shown = [f["title"] for f in _drawn(driver, out["controls"])]
    assert shown == [want["wave"]], (when, shown, want["wave"])
    teaching = _text(driver, out["teaching"])
    assert f"⌊({state['W']} −" in teaching, (when, state["W"], teaching)


def _saved_texts(path: Path) -> dict[str, list[str]]:
    """Figure and colour-bar titles in the widget state saved in the notebook file."""
    import json

    nb = json.loads(path.read_text())
    state = nb["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    found: dict[str, list[str]] = {"Title": [], "ColorBar": [], "HTML": []}

    def walk(obj):
        if isinstance(obj, dict):
            if obj.get("name") == "Title":
                found["Title"].append(obj.get("attributes", {}).get("text", ""))
            if obj.get("name") == "ColorBar":
                found["ColorBar"].append(obj.get("attributes", {}).get("title", ""))
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    for widget in state.values():
        if widget["model_name"] == "BokehModel":
            walk(json.loads(widget["state"]["render_bundle"]))
        if widget["model_name"] == "HTMLModel":
            found["HTML"].append(widget["state"].get("value", ""))
    return found


def _check_saved(path: Path, state: dict) -> None:
    """The widget state saved in the notebook file holds the controls' live values and the
    figures they describe (changed in the browser, stored whole once the events stopped;
    see ``widgets._base._CellSync``)."""
    saved = _saved_texts(path)
    assert any(f"⌊({state['W']} −" in h for h in saved["HTML"]), state["W"]
    main = f"{state['layer']} · map {state['map']} · image 0"
    assert main in saved["Title"], (main, saved["Title"])  # the map browser's figure
    bars = [t for t in saved["ColorBar"] if "≥" in t]  # the heatmap's statistic
    assert bars and all(f"≥ {state['threshold']:g}" in t for t in bars), saved["ColorBar"]


def _choose(output, index: int, text: str) -> None:
    """Choose ``text`` in the ``index``-th dropdown of ``output``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(output.find_elements(By.TAG_NAME, "select")[index]).select_by_visible_text(text)


def _open(driver, port: int, token: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"http://127.0.0.1:{port}/lab/tree/panel.ipynb?token={token}")
    _wait(
        lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"),
        90,
        "the notebook to open",
    )


def _settle(driver) -> None:
    """The kernel is idle and the figures re-sent after the last browser change."""
    _wait(lambda: _idle(driver), 60, "the kernel to be idle")
    time.sleep(3.0)  # the panels re-send a changed figure 1 s after the last change
    _wait(lambda: _idle(driver), 60, "the kernel to be idle")


@pytest.mark.browser
@pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian chromium and chromium-driver are not installed "
    "(apt-get install -y chromium chromium-driver; .ci/run does this)",
)
def test_panels_live_in_jupyterlab(tmp_path):
    """Run All; move the sliders, pick a layer, click heatmap cells, export; what is drawn
    matches the controls live, in the saved notebook and after a reload, which stays live."""
    pytest.importorskip("selenium")
    from selenium.webdriver.common.by import By

    (tmp_path / "nb").mkdir()
    shutil.copy(FIXTURE, tmp_path / "nb" / "panel.ipynb")
    port, token = _free_port(), uuid.uuid4().hex
    lab = _start_lab(tmp_path, port, token)
    driver = None
    shots = Path(os.environ.get("CNNEXPLORE_SCREENSHOTS", tempfile.gettempdir()))
    try:
        _wait(lambda: _server_up(port, token) or lab.poll() is not None, 180, "JupyterLab to start")
        assert lab.poll() is None, (tmp_path / "lab.log").read_text()[-3000:]
        driver = _driver(tmp_path / "profile")
        _open(driver, port, token)
        _wait(lambda: _idle(driver), 90, "the kernel to be idle")
        # "Run All", as researchers do: the panel cell runs right after the setup cell, so
        # the panel is drawn as soon as its output arrives (regression: it used to draw
        # before BokehJS had loaded and showed "Click to show javascript error")
        _menu(driver, "Run", "Run All Cells")
        _wait(lambda: _output_with(driver, "K_eff"), 120, "the last output")
        _wait(
            lambda: _assert_no_widget_error(driver) or _figures_drawn(driver) >= 4,
            90,
            "the Bokeh figures to be drawn",
        )
        _wait(lambda: _idle(driver), 90, "the kernel to finish the notebook")
        time.sleep(2)  # let BokehJS finish drawing the canvases
        _assert_no_widget_error(driver)
        driver.save_screenshot(str(shots / "cnnexplore_browser_before.png"))
        _check_drawn(driver, lambda: _controls(driver), "after Run All")
        _heat_painted(driver, "after Run All")

        # 1. the map slider redraws the map browser's figure; the layer picker changes layer
        _move_slider(driver, _outputs(driver)["browser"], 0, 3)
        _wait(lambda: _map_title(driver) == "conv · map 3 · image 0", 30, "the map to change")
        _wait(lambda: _readouts(_outputs(driver)["browser"])[0] == "3", 10, "the readout 3")
        _settle(driver)
        _choose(_outputs(driver)["browser"], 0, "deep")
        _wait(lambda: _idle(driver), 30, "the kernel to change the layer")
        _move_slider(driver, _outputs(driver)["browser"], 0, 1)
        _wait(lambda: _readouts(_outputs(driver)["browser"])[0] == "4", 10, "the readout 4")

        # 2. a click on a heatmap cell shows that layer pair's best maps in the pair view,
        # and the other cells' numbers stay readable
        panel_out = _outputs(driver)["panel"]
        shown = _selected(panel_out)
        assert shown[2:4] == ["late", "late"], shown  # the pair view opens on (late, late)
        _click_cell(driver, "early", "early")
        _wait(lambda: _selected(_outputs(driver)["panel"])[2:4] == ["early", "early"], 30,
              "the pair to change")  # fmt: skip
        time.sleep(1)
        driver.save_screenshot(str(shots / "cnnexplore_browser_clicked.png"))
        _settle(driver)
        # a second click on another cell works too (the selection was cleared)
        _click_cell(driver, "late", "early")
        _wait(lambda: _selected(_outputs(driver)["panel"])[2:4] == ["early", "late"], 30,
              "the second click")  # fmt: skip

        # 3. the threshold slider re-derives the statistics (no recomputation)
        _move_slider(driver, _outputs(driver)["panel"], 0, 5)
        _wait(lambda: "≥ 0.85" in _text(driver, _output_with(driver, "click a heatmap")), 30,
              "the threshold 0.85")  # fmt: skip

        # 4. a figure of one's own and a teaching widget
        _move_slider(driver, _outputs(driver)["controls"], 0, 2)
        _move_slider(driver, _outputs(driver)["teaching"], 0, 1)
        _settle(driver)
        state = _controls(driver)
        assert (state["layer"], state["map"], state["threshold"]) == ("deep", 4, 0.85), state
        assert (state["wave"], state["W"]) == (3, 33), state
        _check_drawn(driver, state, "after the interactions")

        # 5. export: files in the notebook's figure folder, paths shown beside the button
        panel_out = _outputs(driver)["panel"]
        button = [b for b in panel_out.find_elements(By.TAG_NAME, "button") if "Export" in b.text]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button[0])
        button[0].click()
        folder = tmp_path / "figures" / "panel"
        _wait(lambda: "correlation.pdf" in _text(driver, _output_with(driver, "click a heatmap")),
              60, "the export")  # fmt: skip
        assert {p.name for p in folder.iterdir()} >= {"correlation.png", "correlation.svg",
                                                       "correlation.pdf"}  # fmt: skip
        assert str(folder / "correlation.png") in _text(driver, _outputs(driver)["panel"])
        driver.save_screenshot(str(shots / "cnnexplore_browser_exported.png"))

        # 6. save: the notebook file holds the widget state
        _menu(driver, "File", "Save Notebook")
        saved = tmp_path / "nb" / "panel.ipynb"
        _wait(lambda: "widgets" in saved.read_text()[-200000:] and _idle(driver), 30, "the save")
        time.sleep(2)
        _check_saved(saved, state)

        # 7. reload the page: the panels come back from the running kernel, drawing what
        # their controls say, and still live
        driver.refresh()
        _wait(
            lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"),
            90,
            "the notebook to open again",
        )
        _wait(lambda: _output_with(driver, "K_eff"), 60, "the outputs after reload")
        _wait(
            lambda: _assert_no_widget_error(driver) or _figures_drawn(driver) >= 4,
            60,
            "the figures after reload",
        )
        time.sleep(2)
        _assert_no_widget_error(driver)
        driver.save_screenshot(str(shots / "cnnexplore_browser_reloaded.png"))
        assert _controls(driver) == state, (_controls(driver), state)
        _check_drawn(driver, state, "after the reload")
        _heat_painted(driver, "after the reload")
        driver.save_screenshot(str(shots / "cnnexplore_browser_reloaded_heatmap.png"))
        _move_slider(driver, _outputs(driver)["browser"], 0, 1)
        _wait(lambda: _map_title(driver) == "deep · map 5 · image 0", 30,
              "the map to change after reload")  # fmt: skip
        _click_cell(driver, "late", "late")
        _wait(lambda: _selected(_outputs(driver)["panel"])[2:4] == ["late", "late"], 30,
              "a click after reload")  # fmt: skip
        _settle(driver)
        _check_drawn(driver, lambda: _controls(driver), "after interacting after the reload")
        _heat_painted(driver, "after interacting after the reload")
        _assert_no_widget_error(driver)
        # 8. nothing was fetched from outside (BokehJS, Panel's CSS and JS are inline)
        assert _offsite(driver) == []
    except Exception:
        if driver is not None:
            driver.save_screenshot(str(shots / "cnnexplore_browser_failure.png"))
            for entry in driver.get_log("browser"):
                if entry.get("level") in ("SEVERE", "WARNING"):
                    print("console:", entry.get("message", "")[:600])
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
