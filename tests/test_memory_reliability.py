"""Crash safety and concurrency, tested for real: SIGKILLed writers and readers running beside a writer."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from memory import KnowledgeStore
from perception.text import HashingTextEncoder

ROOT = Path(__file__).resolve().parents[1]
BATCH = 5

# A writer that commits batches forever and prints each batch id only after its commit returned.
# Facts carry embeddings from a tiny deterministic encoder, so every transaction writes two tables.
WRITER = r"""
import hashlib, os, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from memory import KnowledgeStore

class TinyEncoder:
    dim = 16
    def encode(self, texts):
        rows = [np.random.default_rng(int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little"))
                .standard_normal(16) for t in texts]
        out = np.array(rows, dtype=np.float32).reshape(len(texts), 16)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

path, start, batch, parent = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
store = KnowledgeStore(path, encoder=TinyEncoder() if batch else None)
i = start
while os.getppid() == parent:
    facts = [(f"item_{i}_{j}", "tag", f"batch_{i}") for j in range(max(batch, 1))]
    facts.append(("counter", "located_in", f"slot_{i}"))
    store.add_facts(facts, source="study:writer")
    print(i, flush=True)
    i += 1
"""


def start_writer(script: Path, db: Path, start: int, batch: int = BATCH) -> subprocess.Popen[str]:
    args = [sys.executable, str(script), str(ROOT), str(db), str(start), str(batch), str(os.getpid())]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def check_after_crash(db: Path, reported: list[int]) -> None:
    """The store opens, passes integrity_check, and holds every reported batch whole (and no partial batch)."""
    with KnowledgeStore(db, create=False) as store:
        assert store.integrity_check() == "ok"
        conn = store.conn
        sizes = dict(conn.execute("SELECT object, count(*) FROM facts WHERE relation = 'tag' GROUP BY object"))
        missing = [i for i in reported if sizes.get(f"batch_{i}") != BATCH]
        assert not missing, f"committed batches lost or partial: {missing[:10]}"
        partial = {name: n for name, n in sizes.items() if n != BATCH}
        assert not partial, f"partially committed batches: {partial}"
        unembedded = conn.execute(
            "SELECT count(*) FROM facts f LEFT JOIN embeddings e ON e.kind = 'fact' AND e.item_id = f.id"
            " WHERE f.relation = 'tag' AND e.item_id IS NULL").fetchone()[0]
        assert unembedded == 0, "a fact was committed without the embedding written in the same transaction"
        if reported:
            last = max(reported)
            assert store.object_locations()["counter"] in (f"slot_{last}", f"slot_{last + 1}")


def kill_writer_repeatedly(tmp_path: Path, kills: int, seed: int) -> int:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    db = tmp_path / "crash.sqlite"
    rng = random.Random(seed)
    next_id, committed = 0, 0
    for round_ in range(kills):
        writer = start_writer(script, db, next_id)
        try:
            if round_ % 5 == 4:  # sometimes kill while it is starting up, opening or creating the store
                time.sleep(rng.uniform(0.0, 0.15))
            else:  # usually in the middle of a stream of commits
                first = writer.stdout.readline()
                assert first, f"writer died before its first commit: {writer.stderr.read()}"
                time.sleep(rng.uniform(0.0, 0.03))
            writer.send_signal(signal.SIGKILL)
            out, _ = writer.communicate(timeout=30)
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
        assert writer.returncode == -signal.SIGKILL
        reported = [int(line) for line in (("" if round_ % 5 == 4 else first) + out).split()]
        if db.exists():
            check_after_crash(db, reported)
        committed += len(reported)
        next_id = max(reported, default=next_id - 1) + 1
    return committed


def test_sigkilled_writer_never_loses_a_committed_fact(tmp_path: Path) -> None:
    committed = kill_writer_repeatedly(tmp_path, kills=50, seed=7)
    assert committed >= 40  # the writers really did commit between kills


@pytest.mark.slow
def test_sigkilled_writer_200_times(tmp_path: Path) -> None:
    committed = kill_writer_repeatedly(tmp_path, kills=200, seed=11)
    assert committed >= 160


def reader_loop(db: Path, stop: threading.Event, results: dict[str, object], name: str, retrieve: bool) -> None:
    try:
        encoder = HashingTextEncoder(dim=32) if retrieve else None
        with KnowledgeStore(db, encoder=encoder, create=False) as store:
            seen, slowest, reads = [], 0.0, 0
            while not stop.is_set():
                began = time.perf_counter()
                seen.append(store.counts()["facts"])
                assert "counter" in store.object_locations()
                if retrieve:
                    assert store.retrieve("item 3 tag batch", k=3).facts
                slowest = max(slowest, time.perf_counter() - began)
                reads += 1
        results[name] = (seen, slowest, reads)
    except BaseException as error:  # reported to the main thread
        results[name] = error


def test_readers_keep_working_while_a_writer_writes(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    db = tmp_path / "busy.sqlite"
    writer = start_writer(script, db, 0, batch=0)  # batch 0: one fact per commit, no embeddings
    try:
        assert writer.stdout.readline(), writer.stderr.read()
        stop, results = threading.Event(), {}
        readers = [threading.Thread(target=reader_loop, args=(db, stop, results, f"r{i}", i == 0)) for i in range(2)]
        for reader in readers:
            reader.start()
        time.sleep(2.0)
        stop.set()
        for reader in readers:
            reader.join(timeout=30)
    finally:
        writer.kill()
        out, _ = writer.communicate(timeout=30)
    assert len(out.split()) >= 20, "the writer made too little progress while readers read"
    for name, result in results.items():
        assert not isinstance(result, BaseException), f"reader {name} failed: {result!r}"
        seen, slowest, reads = result
        assert reads >= 10, f"reader {name} was starved: {reads} reads"
        assert seen == sorted(seen), f"reader {name} saw the store go backwards"
        assert seen[-1] > seen[0], f"reader {name} never saw the writer's new facts"
        assert slowest < 2.0, f"reader {name} was blocked for {slowest:.2f} s"
    assert len(results) == 2
    with KnowledgeStore(db, create=False) as store:
        assert store.integrity_check() == "ok"
