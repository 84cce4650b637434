"""Time from a map-slider change to the new plot for 64 maps of 256 x 256.

Prints the median latency of ``MapBrowser`` (slider value set -> HoloViews callback -> Bokeh
data source patched in place) and its ratio to a plain copy of the same 64 maps.
Goal: <= 50 ms per change. Run: ``python benchmarks/bench_widgets.py``.
"""

from __future__ import annotations

import statistics
import time

import numpy as np


def main(n_maps: int = 64, size: int = 256, repeats: int = 30) -> dict[str, float]:
    from cnnexplore_nb.widgets import MapBrowser

    rng = np.random.default_rng(0)
    maps = {"conv": rng.random((1, n_maps, size, size), dtype=np.float32)}
    browser = MapBrowser(maps, grid=0)
    source = browser.plot.handles["source"]

    def step(i: int) -> float:
        t0 = time.perf_counter()
        browser._index.value = i  # exactly what the slider widget does
        data = browser.plot.handles["source"].data["image"][0]
        elapsed = time.perf_counter() - t0
        if not np.array_equal(data[::-1], maps["conv"][0, i]):
            raise RuntimeError(f"map {i} not drawn after the slider change")
        return elapsed

    for i in range(1, 4):  # warm up
        step(i)
    times = [step((5 + k) % n_maps) for k in range(repeats)]
    assert browser.plot.handles["source"] is source  # patched in place, not rebuilt
    copies = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        maps["conv"].copy()
        copies.append(time.perf_counter() - t0)
    slider, copy = statistics.median(times), statistics.median(copies)
    print(f"maps: {n_maps} x {size} x {size} float32 ({maps['conv'].nbytes / 2**20:.0f} MiB)")
    print(
        f"slider change -> new plot: median {1000 * slider:.1f} ms "
        f"(min {1000 * min(times):.1f}, max {1000 * max(times):.1f}); goal <= 50 ms: "
        f"{'met' if slider <= 0.05 else 'NOT met'}"
    )
    print(f"plain copy of the {n_maps} maps: median {1000 * copy:.1f} ms")
    print(f"ratio slider / copy: {slider / copy:.1f}")
    # the same slider with a page of 16 maps shown under the selected one
    paged = MapBrowser(maps, grid=16)
    page_times = []
    for k in range(repeats // 3):
        t0 = time.perf_counter()
        paged._index.value = (16 * k + 3) % n_maps  # a new page each time
        page_times.append(time.perf_counter() - t0)
    page = statistics.median(page_times)
    print(
        f"with a page of 16 maps redrawn too: median {1000 * page:.1f} ms "
        f"(ratio to copy {page / copy:.1f})"
    )
    return {
        "slider_ms": 1000 * slider,
        "copy_ms": 1000 * copy,
        "ratio": slider / copy,
        "page16_ms": 1000 * page,
    }


if __name__ == "__main__":
    main()
