"""The real MiniLM text encoder loads with the hub switched off and embeds sensibly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json
from perception.text import MiniLMEncoder
encoder = MiniLMEncoder()
texts = ["pick up the red block", "grab the red cube", "open the drawer"]
vectors = encoder.encode(texts)
again = encoder.encode(texts[:1])
print(json.dumps({
    "dim": encoder.dim, "shape": list(vectors.shape), "dtype": str(vectors.dtype),
    "norms": [float(x) for x in (vectors ** 2).sum(1) ** 0.5],
    "similar": float(vectors[0] @ vectors[1]), "different": float(vectors[0] @ vectors[2]),
    "cached_equal": bool((again[0] == vectors[0]).all()), "hits": encoder.cache_hits,
}))
"""


def test_minilm_loads_offline_in_a_fresh_process(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "empty_hf_home"),  # no cached hub files to fall back on
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["dim"] == 384 and result["shape"] == [3, 384] and result["dtype"] == "float32"
    assert all(abs(n - 1.0) < 1e-4 for n in result["norms"])
    assert result["similar"] > result["different"] + 0.2, result
    assert result["cached_equal"] and result["hits"] == 1
