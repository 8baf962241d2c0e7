"""JSONL export/import and the `embodia memory` command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.cli import main
from memory import EpisodeRecord, KnowledgeStore, StepOutcome, export_jsonl, import_jsonl
from perception.text import HashingTextEncoder


def filled_store(path: Path) -> KnowledgeStore:
    store = KnowledgeStore(path, encoder=HashingTextEncoder(dim=64))
    store.add_facts([("red_block", "on", "table"), ("red_block", "color", "red", 0.7)], source="study:look")
    store.add_facts([("red_block", "in", "drawer")], source="user")
    plan = {"plan": [{"skill": "pick", "args": ["mug"]}, {"skill": "place", "args": ["plate"]}]}
    store.add_episode(EpisodeRecord(
        "put the mug on the plate", plan,
        [StepOutcome("pick", ("mug",), True), StepOutcome("place", ("plate",), False, note="slipped")],
        [("mug", "located_in", "gripper")]))
    store.add_causal_fact("red_block.mass", "decreases", "push_distance", -0.03, (-0.04, -0.02), n=100)
    store.add_causal_fact("red_block.mass", "decreases", "push_distance", -0.02, (-0.03, -0.01))
    return store


def snapshot(store: KnowledgeStore) -> dict:
    facts = sorted((f.uid, f.triple, round(f.confidence, 9), str(f.source), f.active, f.evidence)
                   for entity in ("red_block", "mug") for f in store.facts_about(entity, include_history=True))
    causal = sorted((c.uid, c.effect, c.active) for c in store.causal_facts(include_history=True))
    episodes = [(e.uid, e.instruction, e.plan, e.steps, e.final_facts, e.success) for e in store.episodes()]
    skills = [(s.skill, s.args, s.attempts, s.successes) for s in store.all_skill_stats()]
    return {"facts": facts, "causal": causal, "episodes": episodes, "skills": skills,
            "locations": store.object_locations()}


def test_export_then_import_reproduces_the_store(tmp_path: Path) -> None:
    with filled_store(tmp_path / "a.sqlite") as source:
        counts = export_jsonl(source, tmp_path / "out" / "dump.jsonl")
        original = snapshot(source)
    assert counts == {"fact": 4, "episode": 1, "skill_outcome": 2, "causal": 2}
    with KnowledgeStore(tmp_path / "b.sqlite", encoder=HashingTextEncoder(dim=64)) as copy:
        tally = import_jsonl(copy, tmp_path / "out" / "dump.jsonl")
        assert tally == {"fact": 4, "episode": 1, "skill_outcome": 2, "causal": 2, "skipped": 0}
        assert snapshot(copy) == original
        superseded = [f for f in copy.facts_about("red_block", include_history=True) if not f.active]
        current = {f.relation: f.id for f in copy.facts_about("red_block")}
        assert superseded[0].superseded_by == current["in"]
        # Importing the same file again adds nothing.
        again = import_jsonl(copy, tmp_path / "out" / "dump.jsonl")
        assert again["skipped"] == 9 and snapshot(copy) == original
        # Embeddings are rebuilt on demand.
        top = copy.retrieve("is the red block in the drawer", k=1).facts[0]
        assert top.item.triple == ("red_block", "in", "drawer")


def test_import_merges_with_revision_rules(tmp_path: Path) -> None:
    with filled_store(tmp_path / "a.sqlite") as source:
        export_jsonl(source, tmp_path / "dump.jsonl")
    with KnowledgeStore(tmp_path / "b.sqlite") as other:
        other.add_facts([("red_block", "on", "counter")], observed_at=1.0)  # older than the import
        other.add_facts([("red_block", "color", "red", 0.5)])
        import_jsonl(other, tmp_path / "dump.jsonl")
        assert other.object_locations()["red_block"] == "drawer"
        colour = next(f for f in other.facts_about("red_block") if f.relation == "color")
        assert colour.evidence == 2 and colour.confidence == pytest.approx(1 - 0.5 * 0.3)
        import_jsonl(other, tmp_path / "dump.jsonl")  # the merged uid is remembered: no second merge
        colour = next(f for f in other.facts_about("red_block") if f.relation == "color")
        assert colour.evidence == 2


@pytest.mark.parametrize(("bad_line", "message"), [
    ("{not json", "line 3: Expecting property name"),
    ('{"type": "fact", "uid": "x"}', "line 3: missing field 'subject'"),
    ('{"type": "bogus"}', "line 3: unknown record type 'bogus'"),
    ('[1, 2]', "line 3: expected a JSON object"),
])
def test_malformed_line_names_its_number_and_imports_nothing(tmp_path: Path, bad_line: str, message: str) -> None:
    with filled_store(tmp_path / "a.sqlite") as source:
        export_jsonl(source, tmp_path / "dump.jsonl")
    lines = (tmp_path / "dump.jsonl").read_text().splitlines()
    lines.insert(2, bad_line)
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    with KnowledgeStore(tmp_path / "b.sqlite") as target:
        with pytest.raises(ValueError, match=f"bad.jsonl {message}"):
            import_jsonl(target, tmp_path / "bad.jsonl")
        assert target.counts() == {"facts": 0, "fact_history": 0, "episodes": 0, "skill_outcomes": 0,
                                   "causal_facts": 0, "embeddings": 0}


def test_bad_values_and_missing_header_are_refused(tmp_path: Path) -> None:
    header = json.dumps({"type": "header", "format": "embodia-memory", "version": 1})
    fact = {"type": "fact", "uid": "u", "subject": "a", "relation": "b", "object": "c", "confidence": 2.0,
            "source": "user", "observed_at": 1.0, "created_at": 1.0, "updated_at": 1.0, "evidence": 1,
            "active": True, "superseded_by": None}
    (tmp_path / "conf.jsonl").write_text(header + "\n" + json.dumps(fact) + "\n")
    (tmp_path / "nohead.jsonl").write_text(json.dumps(fact) + "\n")
    with KnowledgeStore(tmp_path / "s.sqlite") as store:
        with pytest.raises(ValueError, match=r"conf\.jsonl line 2: fact confidence must be a number in \[0, 1\]"):
            import_jsonl(store, tmp_path / "conf.jsonl")
        with pytest.raises(ValueError, match=r"nohead\.jsonl line 1: expected the header"):
            import_jsonl(store, tmp_path / "nohead.jsonl")
        with pytest.raises(FileNotFoundError, match="import file not found"):
            import_jsonl(store, tmp_path / "absent.jsonl")


def test_failed_export_leaves_an_existing_file_alone(tmp_path: Path) -> None:
    out = tmp_path / "dump.jsonl"
    out.write_text("previous export\n")
    store = filled_store(tmp_path / "a.sqlite")
    store.close()
    with pytest.raises(ValueError, match="closed"):
        export_jsonl(store, out)
    assert out.read_text() == "previous export\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".dump")] == []


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["memory", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_add_facts_query_export_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, other = str(tmp_path / "m.sqlite"), str(tmp_path / "other.sqlite")
    assert run_cli(capsys, "facts", "red_block", "--db", db)[0] == 2  # no store yet: an error, no file made
    assert not Path(db).exists()
    assert run_cli(capsys, "add-fact", "red_block", "on", "table", "--db", db)[0] == 0
    code, out, _ = run_cli(capsys, "add-fact", "red_block", "in", "drawer", "--confidence", "0.8", "--db", db)
    assert code == 0 and "confidence=0.80" in out
    code, _, err = run_cli(capsys, "add-fact", "a", "b", "c", "--confidence", "1.5", "--db", db)
    assert code == 2 and "confidence must be a number in [0, 1]" in err
    code, out, _ = run_cli(capsys, "facts", "red_block", "--history", "--db", db)
    assert "  red_block in drawer" in out and "~ red_block on table" in out
    code, out, _ = run_cli(capsys, "query", "where is the red block", "--k", "1", "--encoder", "hashing",
                           "--json", "--db", db)
    result = json.loads(out)
    assert result["entities"] == ["red_block"] and result["hits"][0]["object"] == "drawer"
    assert run_cli(capsys, "export", "--out", str(tmp_path / "d.jsonl"), "--db", db)[0] == 0
    code, out, _ = run_cli(capsys, "import", str(tmp_path / "d.jsonl"), "--db", other)
    assert code == 0 and "2 fact" in out
    code, out, _ = run_cli(capsys, "facts", "red_block", "--json", "--db", other)
    assert [f["object"] for f in json.loads(out)["facts"]] == ["drawer"]
    (tmp_path / "bad.jsonl").write_text('{"type": "header", "format": "embodia-memory", "version": 1}\n{oops\n')
    code, _, err = run_cli(capsys, "import", str(tmp_path / "bad.jsonl"), "--db", str(tmp_path / "new.sqlite"))
    assert code == 2 and "bad.jsonl line 2" in err and not (tmp_path / "new.sqlite").exists()
    code, out, _ = run_cli(capsys, "stats", "--db", other)
    assert code == 0 and "1 facts, 1 fact_history" in out


def test_cli_refuses_a_foreign_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01garbage" * 500)
    code, _, err = run_cli(capsys, "add-fact", "a", "b", "c", "--db", str(junk))
    assert code == 2 and "junk.bin is not an Embodia knowledge store" in err
    assert junk.read_bytes() == b"\x00\x01garbage" * 500
