"""A real browser on a network the toolkit has never seen: JupyterLab + headless Chromium
"Run All" a notebook that builds ``MapBrowser(maps)`` and ``CorrelationPanel(maps)`` for a
hand-written ResNet-18 on four photographs (maps of 56x56 ... 7x7, no other argument), then
move the map slider, click heatmap cells, move the threshold slider and choose another
common grid, as a researcher does.

Uses the JupyterLab and Selenium helpers of ``test_browser.py``; skipped without Debian's
``chromium`` and ``chromium-driver``. Screenshots go to ``$CNNEXPLORE_SCREENSHOTS``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from test_browser import (
    CHROMEDRIVER,
    CHROMIUM,
    _assert_no_widget_error,
    _choose,
    _click_cell,
    _driver,
    _figures_drawn,
    _free_port,
    _idle,
    _menu,
    _move_slider,
    _output_with,
    _selected,
    _server_up,
    _start_lab,
    _stop,
    _wait,
)

pytestmark = [pytest.mark.timeout(600)]

HERE = Path(__file__).parent
FIXTURE = HERE / "fixtures" / "browser_any_cnn.ipynb"


@pytest.mark.browser
@pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian chromium and chromium-driver are not installed "
    "(apt-get install -y chromium chromium-driver; .ci/run does this)",
)
def test_panels_of_a_hand_written_resnet_live_in_jupyterlab(tmp_path):
    pytest.importorskip("selenium")
    from selenium.webdriver.common.by import By

    (tmp_path / "nb").mkdir()
    shutil.copy(FIXTURE, tmp_path / "nb" / "any_cnn.ipynb")
    shutil.copy(HERE / "_external_models.py", tmp_path / "nb" / "_external_models.py")
    port, token = _free_port(), uuid.uuid4().hex
    lab = _start_lab(tmp_path, port, token)
    driver = None
    shots = Path(os.environ.get("CNNEXPLORE_SCREENSHOTS", tempfile.gettempdir()))
    try:
        _wait(lambda: _server_up(port, token) or lab.poll() is not None, 60, "JupyterLab to start")
        assert lab.poll() is None, (tmp_path / "lab.log").read_text()[-3000:]
        driver = _driver(tmp_path / "profile")
        driver.get(f"http://127.0.0.1:{port}/lab/tree/any_cnn.ipynb?token={token}")
        _wait(
            lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"),
            90,
            "the notebook to open",
        )
        _wait(lambda: _idle(driver), 90, "the kernel to be idle")
        _menu(driver, "Run", "Run All Cells")
        _wait(lambda: _output_with(driver, "click a heatmap cell"), 240, "the correlation panel")
        _wait(lambda: _idle(driver), 120, "the kernel to finish the notebook")
        _wait(
            lambda: _assert_no_widget_error(driver) or _figures_drawn(driver) >= 2,
            90,
            "the Bokeh figures to be drawn",
        )
        time.sleep(2)
        _assert_no_widget_error(driver)
        driver.save_screenshot(str(shots / "cnnexplore_any_cnn_before.png"))

        # the panel chose the smallest grid and says so; its dropdowns are measure,
        # statistic, common grid, layer of A, layer of B
        panel_out = _output_with(driver, "click a heatmap cell")
        assert "4 sizes (56×56, 28×28, 14×14, 7×7)" in panel_out.text
        assert "compared on the smallest grid, 7×7" in panel_out.text
        assert _selected(panel_out)[2:5] == [
            "bilinear, to the smallest grid (7×7)", "layer4", "layer4",
        ]  # fmt: skip

        # 1. the map slider redraws the map browser's figure
        browser_out = _wait(lambda: _output_with(driver, "shared colour scale"), 30, "the browser")

        def plot_shot() -> bytes:
            """The map browser's first figure as drawn now (found again each time: a figure
            changed in the browser is re-sent whole once the events stop, a new element)."""
            out = _output_with(driver, "shared colour scale")
            area = out.find_elements(By.XPATH, ".//*[contains(@class,'bk-Figure')]")[0]
            return area.screenshot_as_png

        plot_area = browser_out.find_elements(By.XPATH, ".//*[contains(@class,'bk-Figure')]")[0]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", plot_area)
        before = plot_shot()
        _move_slider(driver, browser_out, 0, 4)
        _wait(lambda: plot_shot() != before, 30, "the map to change")
        readout = browser_out.find_elements(By.CSS_SELECTOR, ".widget-readout")
        _wait(lambda: readout[0].text.strip() == "4", 10, "the map readout to show 4")

        # 2. heatmap clicks across resolutions show that layer pair's best maps
        _click_cell(driver, "layer4", "layer1")  # column: partner layer, row: layer
        _wait(lambda: _selected(panel_out)[3:5] == ["layer1", "layer4"], 30, "the pair")
        _click_cell(driver, "layer2", "layer3")
        _wait(lambda: _selected(panel_out)[3:5] == ["layer3", "layer2"], 30, "a second click")
        assert "no defined similarity" not in panel_out.text
        driver.save_screenshot(str(shots / "cnnexplore_any_cnn_clicked.png"))

        # 3. the threshold slider re-derives the statistics
        _move_slider(driver, panel_out, 0, 5)
        _wait(lambda: "≥ 0.85" in panel_out.text, 30, "the statistics at threshold 0.85")
        _wait(lambda: _idle(driver), 30, "the kernel to process the slider")

        # 4. another common grid: recomputed, said in the status line
        _choose(panel_out, 2, "bicubic, to the smallest grid (7×7)")
        _wait(lambda: "maps compared on a 7×7 grid (bicubic)" in panel_out.text, 60, "the grid")
        _wait(lambda: _idle(driver), 60, "the kernel to recompute")
        _click_cell(driver, "layer4", "layer4")
        _wait(lambda: _selected(panel_out)[3:5] == ["layer4", "layer4"], 30, "a click after it")
        _assert_no_widget_error(driver)
        driver.save_screenshot(str(shots / "cnnexplore_any_cnn_after.png"))
    except Exception:
        if driver is not None:
            driver.save_screenshot(str(shots / "cnnexplore_any_cnn_failure.png"))
        raise
    finally:
        if driver is not None:
            driver.quit()
        _stop(lab)
