"""Teaching widgets: sliders drive the library's numbers."""

from __future__ import annotations

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
