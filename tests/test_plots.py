"""Plots show what their legends list, and keep their labels inside the figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from experiments.training import sweep
from experiments.training.report import plot_learning_curves


@pytest.fixture
def kept_figure(monkeypatch):
    """Keep the figure a plotting function closes, so the test can inspect it."""
    monkeypatch.setattr(plt, "close", lambda *args, **kwargs: None)
    yield
    plt.close("all")


def _visible(line) -> bool:
    """A line artist draws something: a segment (two points, a line style) or markers."""
    has_segment = len(line.get_xdata()) >= 2 and line.get_linestyle() not in ("None", "", " ")
    return has_segment or line.get_marker() not in (None, "None", "", " ")


def test_every_learning_curve_series_in_the_legend_is_drawn(tmp_path: Path, kept_figure) -> None:
    # One rollout figure only (a short run): the legend lists the series, so it must show as a point.
    history = [{"step": 1024, "eval_success": 0.2, "eval_ci95": [0.1, 0.4], "rollout_success": 0.15},
               {"step": 2048, "eval_success": 0.5, "eval_ci95": [0.3, 0.7], "rollout_success": None}]
    plot_learning_curves([("reach", history)], tmp_path / "curve.png", "reach")
    axis = plt.gcf().axes[0]
    labelled = {text.get_text() for text in axis.get_legend().get_texts()}
    assert {"reach eval", "reach rollouts"} <= labelled
    for line in axis.get_lines():
        if line.get_label() in labelled:
            assert _visible(line), f"{line.get_label()} is in the legend but draws nothing"
    assert (tmp_path / "curve.png").stat().st_size > 1000


def test_sweep_plot_labels_fit_in_the_figure(tmp_path: Path, kept_figure) -> None:
    rows = [{"group": "learning_rate=0.0003 n_steps=1024", "mean": 0.8, "std": 0.1},
            {"group": "learning_rate=0.0001 n_steps=2048", "mean": 0.5, "std": 0.2}]
    sweep._plot(rows, tmp_path / "summary.png")
    figure = plt.gcf()
    renderer = figure.canvas.get_renderer()
    axis = figure.axes[0]
    width, height = figure.bbox.width, figure.bbox.height
    for text in [axis.yaxis.label, *axis.get_xticklabels()]:
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, \
            f"{text.get_text()!r} is cut off: {box} outside {width}x{height}"
