"""Teaching widgets: sliders drive the library's numbers."""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest

from cnnexplore_nb.lecture import output_size
from cnnexplore_nb.widgets.teaching import output_size_explorer, threshold_explorer


def test_output_size_sliders_follow_the_formula():
    ui = output_size_explorer(size=32, kernel=3)
    w, k, p, s, d = ui.children[:5]
    assert ui.result.endswith(f"<b>{output_size(32, 3)}</b>")
    for values in [(32, 5, 2, 1, 1), (64, 3, 1, 2, 1), (20, 3, 0, 1, 3)]:
        for slider, v in zip((w, k, p, s, d), values, strict=True):
            slider.value = v
        expected = output_size(values[0], values[1], padding=values[2], stride=values[3],
                               dilation=values[4])  # fmt: skip
        assert f"<b>{expected}</b>" in ui.result
        assert ui.children[-1].value == ui.result  # the HTML shown is the text computed
    w.value, k.value, p.value, d.value = 2, 5, 0, 1
    assert ui.result.startswith("<b>invalid:</b>")


class _FakeStudy:
    def __init__(self):
        self.calls = []

    def at(self, t):
        self.calls.append(t)
        return pd.DataFrame({"threshold": [t], "removed": [round(10 * (1 - t))]})


def test_threshold_slider_calls_study_at():
    study = _FakeStudy()
    ui = threshold_explorer(study, [0.5, 0.7, 0.9])
    assert study.calls == [0.7] and ui.result["removed"].item() == 3
    ui.children[0].value = 0.9
    assert study.calls == [0.7, 0.9] and ui.result["threshold"].item() == 0.9
    assert "<table" in ui.children[-1].value
    with pytest.raises(ValueError, match="one of the thresholds"):
        threshold_explorer(study, [0.5], value=0.6)


def test_threshold_table_is_shown_in_words_and_rounded():
    """What the slider shows: headings in words, counts as integers, scores to 3 decimals
    (the DataFrame in ``.result`` keeps the raw columns)."""

    class Study:
        def at(self, t):
            return pd.DataFrame({
                "threshold": [t, t], "criterion": ["correlation", "l1"],
                "removed": [12.0, 12.0], "removed_conv_module2": [5, 5],
                "params": [30_000.0, 30_000.0], "iou_pruned": [0.7512345, 0.60001],
                "iou_finetuned": [np.nan, np.nan], "iou_before": [0.78, 0.78],
                "iou_change": [-0.0287655, -0.17999],
            })  # fmt: skip

    ui = threshold_explorer(Study(), [0.8])
    page = ui.children[-1].value
    headings = [html.unescape(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", page)]
    assert headings == [
        "|r| threshold", "selection", "maps removed", "maps removed, module 2", "parameters",
        "IoU after pruning", "IoU fine-tuned", "IoU before", "IoU change",
    ]  # fmt: skip
    cells = [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", page)]
    assert cells[:9] == ["0.8", "correlation", "12", "5", "30000", "0.751", "–", "0.78", "-0.029"]
    assert cells[9:] == ["0.8", "L1 norm", "12", "5", "30000", "0.600", "–", "0.78", "-0.180"]
    assert list(ui.result.columns)[:3] == ["threshold", "criterion", "removed"]
