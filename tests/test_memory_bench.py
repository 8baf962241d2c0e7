"""`embodia bench memory` runs end to end on tiny sizes and reports consistent figures."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from experiments.bench import memory as bench


def test_bench_memory_runs_on_tiny_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--sizes", "200,400", "--queries", "5", "--batch", "100", "--dim", "32",
                              "--no-minilm", "--dir", str(tmp_path)])
    figures = bench.run(args)
    rows = figures["sizes"]
    assert [r["facts"] for r in rows] == [200, 400]
    assert [r["indexed"] for r in rows] == [300, 500]  # plus the 100 single-fact commits
    for row in rows:
        assert row["inserts_per_s"] > 0 and row["retrieve"]["p50_ms"] <= row["retrieve"]["p95_ms"]
    out = capsys.readouterr().out
    assert "seeded random unit vectors" in out and "    400" in out
    assert figures["minilm_query_encoding"] is None


def test_bench_memory_rejects_bad_sizes() -> None:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    with pytest.raises(ValueError, match="must be positive"):
        bench.run(parser.parse_args(["--sizes", "0"]))
