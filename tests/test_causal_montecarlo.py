"""Monte Carlo variance is numerically safe: a target that barely varies gets a standard error of ~0, not a crash."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from causal import montecarlo
from causal.queries import answer_query
from causal.spec import parse_scm
from experiments.cli import main

SIN_MODEL = {"format_version": 1, "id": "sin", "scm_type": "nonlinear_additive_noise", "nodes": ["X", "Y"],
             "equations": {"X": {"parents": [], "expr": "0", "noise_std": 1.0},
                           "Y": {"parents": ["X"], "expr": "sin(X)", "noise_std": 0.5}}}
QUERY = {"type": "interventional_mean", "target": "Y", "do": {"X": 0.3}}


def test_sin_under_do_is_exact_with_zero_standard_error() -> None:
    """E[sin(X) | do(X=0.3)] is the constant sin(0.3): E[f²]-E[f]² was slightly negative here (math domain error)."""
    answer = answer_query(parse_scm(SIN_MODEL), QUERY)
    assert answer["answer"] == pytest.approx(math.sin(0.3), abs=1e-12)
    assert 0.0 <= answer["standard_error"] < 1e-12


def test_sin_query_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, queries = tmp_path / "sin.json", tmp_path / "q.json"
    model.write_text(json.dumps(SIN_MODEL))
    queries.write_text(json.dumps([QUERY, {**QUERY, "type": "observational_mean", "do": {}}]))
    code = main(["causal", "query", str(model), str(queries), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    answers = json.loads(captured.out)
    assert answers[0]["answer"] == pytest.approx(math.sin(0.3), abs=1e-12) and answers[0]["standard_error"] >= 0
    assert abs(answers[1]["answer"]) < 5 * answers[1]["standard_error"] + 1e-3  # E[sin(X)] = 0 for X ~ N(0, 1)
    assert "NaN" not in captured.out and "Infinity" not in captured.out


def test_pairwise_covariance_matches_numpy_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunk-merged covariance equals the two-pass covariance of all draws (uneven last chunk included)."""
    monkeypatch.setattr(montecarlo, "CHUNK", 1000)
    y = {"parents": ["X"], "expr": "1e6 + sin(X) + X**2", "noise_std": 1}
    scm = parse_scm({**SIN_MODEL, "equations": {**SIN_MODEL["equations"], "Y": y}})
    worlds = [scm, scm.do({"X": 0.5})]
    mean, cov = montecarlo.world_means(worlds, "Y", n=4321, seed=3)
    rng = np.random.default_rng(3)
    x = np.concatenate([montecarlo.draw_noise(scm, size, rng)["X"] for size in (1000,) * 4 + (321,)])
    f = np.stack([1e6 + np.sin(x) + x**2, np.full_like(x, 1e6 + np.sin(0.5) + 0.25)])
    assert mean == pytest.approx(f.mean(axis=1), rel=1e-14)
    # equal up to rounding of values near 1e6 (1e-10 each): far below the variance itself (~6e-4)
    assert cov == pytest.approx(np.cov(f, ddof=1) / f.shape[1], rel=1e-9, abs=1e-15)
    assert cov[1, 1] >= 0.0 and cov[0, 0] > 0.0


def test_deterministic_ate_has_a_non_negative_standard_error() -> None:
    answer = answer_query(parse_scm(SIN_MODEL), {"type": "ate", "treatment": "X", "outcome": "Y",
                                                 "treatment_value": 0.3, "control_value": 0.0})
    assert answer["answer"] == pytest.approx(math.sin(0.3), abs=1e-12) and answer["standard_error"] >= 0.0
