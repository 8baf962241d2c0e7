"""`embodia causal query` and `embodia causal sample` end to end through the CLI entry point."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from experiments.cli import main

DATA = Path(__file__).parent / "data" / "causal"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_query_json_answers_a_list_in_order(tmp_path: Path, capsys) -> None:
    queries = tmp_path / "q.json"
    queries.write_text(
        json.dumps(
            [
                {
                    "type": "interventional_probability",
                    "target": "wet_grass",
                    "target_state": "wet",
                    "do": {"sprinkler": "on"},
                },
                {
                    "type": "backdoor_sets",
                    "treatment": "sprinkler",
                    "outcome": "wet_grass",
                    "observed": ["sprinkler", "wet_grass", "rain"],
                },
                {
                    "type": "counterfactual_probability",
                    "evidence": {"sprinkler": "on", "wet_grass": "wet"},
                    "do": {"sprinkler": "off"},
                    "target": "wet_grass",
                    "target_state": "wet",
                },
            ]
        )
    )
    code, out, _ = _run(capsys, "causal", "query", str(DATA / "sprinkler.json"), str(queries), "--json")
    answers = json.loads(out)
    assert code == 0 and [a["type"] for a in answers] == [
        "interventional_probability",
        "backdoor_sets",
        "counterfactual_probability",
    ]
    assert answers[0]["answer"] == pytest.approx(0.945)
    assert answers[1] == {"type": "backdoor_sets", "identifiable": True, "sets": [["rain"]], "method": "exact"}
    assert 0 < answers[2]["answer"] < 1


def test_query_single_object_gives_single_answer(tmp_path: Path, capsys) -> None:
    queries = tmp_path / "q.json"
    queries.write_text(
        json.dumps({"type": "ate", "treatment": "X", "outcome": "Y", "treatment_value": 1, "control_value": 0})
    )
    code, out, _ = _run(capsys, "causal", "query", str(DATA / "triangle_linear.json"), str(queries), "--json")
    assert code == 0 and json.loads(out) == {"type": "ate", "answer": pytest.approx(2.0), "method": "exact"}
    code, out, _ = _run(capsys, "causal", "query", str(DATA / "triangle_linear.json"), str(queries))
    assert code == 0 and out.startswith("1. ate: 2.0")


def test_sample_writes_the_observed_columns_reproducibly(tmp_path: Path, capsys) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    model = str(DATA / "frontdoor_linear.json")
    for out in (first, second):
        assert _run(capsys, "causal", "sample", model, "-n", "50", "--seed", "3", "--out", str(out))[0] == 0
    assert first.read_text() == second.read_text()
    rows = list(csv.reader(first.open()))
    assert rows[0] == ["X", "M", "Y"] and len(rows) == 51  # latent U is not in the data
    code, _, _ = _run(
        capsys,
        "causal",
        "sample",
        model,
        "-n",
        "5",
        "--do",
        "X=2.5",
        "--include-latent",
        "--out",
        str(tmp_path / "do.csv"),
    )
    rows = list(csv.DictReader((tmp_path / "do.csv").open()))
    assert code == 0 and list(rows[0]) == ["U", "X", "M", "Y"] and {r["X"] for r in rows} == {"2.5"}


def test_sample_discrete_writes_state_names(tmp_path: Path, capsys) -> None:
    out = tmp_path / "s.csv"
    code, _, _ = _run(
        capsys, "causal", "sample", str(DATA / "sprinkler.json"), "-n", "40", "--do", "rain=yes", "--out", str(out)
    )
    rows = list(csv.DictReader(out.open()))
    assert code == 0 and {r["rain"] for r in rows} == {"yes"} and {r["cloudy"] for r in rows} <= {"no", "yes"}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda raw: raw["equations"]["X"].update(parents=["Y"], coefficients={"Y": 1}), "cycle"),
        (lambda raw: raw["equations"]["M"].update(coefficients={}), "node 'M': parent 'X' has no coefficient"),
        (lambda raw: raw["equations"]["Y"].update(parents=["M", "ghost"]), "node 'Y': unknown parent 'ghost'"),
    ],
)
def test_bad_model_files_exit_2_with_the_node_named(tmp_path: Path, capsys, edit, message: str) -> None:
    raw = json.loads((DATA / "chain_linear.json").read_text())
    edit(raw)
    model = tmp_path / "bad.json"
    model.write_text(json.dumps(raw))
    out = tmp_path / "never.csv"
    code, _, err = _run(capsys, "causal", "sample", str(model), "-n", "5", "--out", str(out))
    assert code == 2 and err.startswith("embodia causal: error:") and message in err
    assert not out.exists()


def test_bad_inputs_exit_2(tmp_path: Path, capsys) -> None:
    model = str(DATA / "chain_linear.json")
    broken = tmp_path / "q.json"
    broken.write_text("[{")
    assert _run(capsys, "causal", "query", model, str(broken))[0] == 2
    code, _, err = _run(capsys, "causal", "query", model, str(tmp_path / "missing.json"))
    assert code == 2 and "queries file not found" in err
    broken.write_text(json.dumps([{"type": "interventional_mean", "target": "Nope", "do": {}}]))
    code, _, err = _run(capsys, "causal", "query", model, str(broken), "--json")
    assert code == 2 and "unknown target node 'Nope'" in err
    code, _, err = _run(capsys, "causal", "sample", model, "-n", "5", "--do", "X", "--out", str(tmp_path / "x.csv"))
    assert code == 2 and "--do expects NODE=VALUE" in err
    code, _, err = _run(capsys, "causal", "sample", model, "-n", "5", "--do", "X=abc", "--out", str(tmp_path / "x.csv"))
    assert code == 2 and "must be a number" in err and not (tmp_path / "x.csv").exists()
