"""Knowledge store speed: batched inserts/s and top-k retrieval latency at 1k, 10k and 100k facts.

Facts are embedded with seeded random unit vectors (not MiniLM) so that 100k inserts measure the
store, not the text model; retrieval is timed end to end (`store.retrieve`: revision check, entity
lookup, exact top-k over the in-memory matrix, loading the hits) and for the matrix scan alone. The
MiniLM query encoding a real query adds is timed separately, cold (uncached) and cached.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from experiments.common import args as args_types
from experiments.common.errors import InputError

GOAL_P95_MS = 20.0


class RandomUnitEncoder:
    """Seeded random unit vectors: instant, deterministic for a given call sequence, content-free."""

    name = "bench-random-unit"

    def __init__(self, dim: int, seed: int) -> None:
        self.dim = dim
        self._rng = np.random.default_rng(seed)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Random unit vectors for `texts` (content ignored), so store timings exclude any model's cost."""
        vectors = self._rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `embodia bench memory`: store sizes, queries, k, batch size, embedding size, seed, folder."""
    parser.add_argument("--sizes", default="1000,10000,100000", help="store sizes in facts (comma-separated)")
    parser.add_argument("--queries", type=int, default=300, help="timed queries per size")
    parser.add_argument("--k", type=int, default=5, help="results per kind")
    parser.add_argument("--batch", type=int, default=1000, help="facts per insert transaction")
    parser.add_argument("--dim", type=int, default=384, help="embedding size (384 = MiniLM)")
    parser.add_argument("--seed", type=args_types.seed, default=0)
    parser.add_argument("--no-minilm", action="store_true", help="skip timing MiniLM query encoding")
    parser.add_argument("--dir", type=Path, default=None, help="where the stores go (default: a temp folder)")


def _facts(start: int, stop: int) -> list[tuple[str, str, str]]:
    relations = ("near", "color", "has_part", "made_of", "located_in", "tag", "size", "owner", "seen_with", "shape")
    return [(f"object_{i}", relations[i % len(relations)], f"value_{i % 997}") for i in range(start, stop)]


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean())}


def _time_each(fn: Any, inputs: list[Any]) -> list[float]:
    times = []
    for item in inputs:
        began = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - began)
    return times


def _measure_size(size: int, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from memory import KnowledgeStore

    path = folder / f"bench_{size}.sqlite"
    with KnowledgeStore(path, encoder=RandomUnitEncoder(args.dim, args.seed)) as store:
        began = time.perf_counter()
        for start in range(0, size, args.batch):
            store.add_facts(_facts(start, min(start + args.batch, size)), source="study:bench")
        insert_s = time.perf_counter() - began
        singles = _time_each(lambda i: store.add_fact(f"single_{i}", "tag", "x"), list(range(100)))
    with KnowledgeStore(path, encoder=RandomUnitEncoder(args.dim, args.seed + 1)) as store:
        began = time.perf_counter()
        store.refresh_index()
        load_s = time.perf_counter() - began
        rng = np.random.default_rng(args.seed)
        texts = [f"where did I leave object {int(i)}" for i in rng.integers(0, size, args.queries)]
        store.retrieve(texts[0], k=args.k)  # warm-up
        end_to_end = _time_each(lambda q: store.retrieve(q, k=args.k), texts)
        vectors = list(RandomUnitEncoder(args.dim, args.seed + 2).encode(texts))
        scan = _time_each(lambda v: store.nearest(v, args.k, refresh=False), vectors)
        indexed = store.index_size()
    return {"facts": size, "indexed": indexed, "inserts_per_s": size / insert_s, "insert_s": insert_s,
            "single_commits_per_s": len(singles) / sum(singles), "index_load_s": load_s,
            "db_mb": path.stat().st_size / 2**20, "retrieve": _percentiles(end_to_end), "scan": _percentiles(scan)}


def _measure_minilm(queries: int) -> dict[str, Any]:
    from perception.text import MiniLMEncoder

    began = time.perf_counter()
    encoder = MiniLMEncoder()
    load_s = time.perf_counter() - began
    texts = [f"take the block you hid in drawer number {i} and put it in the bowl" for i in range(queries)]
    encoder.encode(["warm up the model"])
    cold = _time_each(lambda t: encoder.encode([t]), texts)
    cached = _time_each(lambda t: encoder.encode([t]), texts)
    return {"load_s": load_s, "cold": _percentiles(cold), "cached": _percentiles(cached)}


def _print_table(rows: list[dict[str, Any]], minilm: dict[str, Any] | None, args: argparse.Namespace) -> None:
    print(f"knowledge store benchmark: dim={args.dim}, k={args.k} per kind, batch={args.batch}, "
          f"{args.queries} queries per size")
    print("fact embeddings: seeded random unit vectors (not MiniLM; MiniLM query encoding is timed below)")
    print(f"{'facts':>8} {'inserts/s':>10} {'1-fact tx/s':>11} {'load s':>7} {'DB MB':>7} "
          f"{'retrieve p50':>12} {'p95':>7} {'p99':>7} {'scan p50':>9} {'p95':>7}")
    for r in rows:
        print(f"{r['facts']:>8} {r['inserts_per_s']:>10.0f} {r['single_commits_per_s']:>11.0f} "
              f"{r['index_load_s']:>7.2f} {r['db_mb']:>7.1f} {r['retrieve']['p50_ms']:>10.2f}ms "
              f"{r['retrieve']['p95_ms']:>5.2f}ms {r['retrieve']['p99_ms']:>5.2f}ms "
              f"{r['scan']['p50_ms']:>7.2f}ms {r['scan']['p95_ms']:>5.2f}ms")
    if minilm is not None:
        print(f"MiniLM query encoding (1 sentence, CPU): load {minilm['load_s']:.1f} s, "
              f"cold p50 {minilm['cold']['p50_ms']:.1f} ms / p95 {minilm['cold']['p95_ms']:.1f} ms, "
              f"cached p50 {minilm['cached']['p50_ms']:.3f} ms")


def _growth_note(rows: list[dict[str, Any]], dim: int) -> str:
    if len(rows) < 2:
        return ""
    small, large = rows[0], rows[-1]
    factor = large["facts"] / small["facts"]
    growth = large["scan"]["p50_ms"] / max(small["scan"]["p50_ms"], 1e-9)
    verdict = "meets" if large["retrieve"]["p95_ms"] < GOAL_P95_MS else "MISSES"
    return (f"{factor:.0f}x more facts -> matrix scan {growth:.0f}x slower (exact search is O(N*dim), "
            f"memory-bandwidth bound: a {large['facts']} x {dim} float32 matrix is "
            f"{large['facts'] * dim * 4 / 2**20:.0f} MB read per query). "
            f"p95 at {large['facts']} facts {verdict} the {GOAL_P95_MS:.0f} ms goal. Beyond ~1M facts, or when "
            "p95 must stay flat, use an approximate index (HNSW via hnswlib/FAISS, or sqlite-vec) kept beside "
            "the same SQLite rows; the exact scan stays the reference for recall.")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every size, print the table, and return the figures."""
    sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    if not sizes or min(sizes) < 1 or args.queries < 1 or args.k < 1 or args.batch < 1:
        raise InputError(f"sizes, --queries, --k and --batch must be positive, got {args.sizes!r}, "
                         f"{args.queries}, {args.k}, {args.batch}")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="embodia_bench_memory_") as temp:
        folder = Path(args.dir) if args.dir is not None else Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        rows = [_measure_size(size, args, folder) for size in sizes]
    minilm = None if args.no_minilm else _measure_minilm(min(args.queries, 200))
    load = {"before": load_before[0], "after": os.getloadavg()[0], "cpus": os.cpu_count()}
    _print_table(rows, minilm, args)
    print(f"machine load average {load['before']:.1f} before / {load['after']:.1f} after on {load['cpus']} CPUs "
          "(latency tails grow when other processes compete for the cores and memory bandwidth)")
    note = _growth_note(rows, args.dim)
    if note:
        print(note)
    return {"embedding": "seeded random unit vectors", "dim": args.dim, "k": args.k, "batch": args.batch,
            "sizes": rows, "minilm_query_encoding": minilm, "goal_p95_ms": GOAL_P95_MS, "load_average": load,
            "note": note}
