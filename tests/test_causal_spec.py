"""SCM files: parsing, validation errors that name the node, and the safe expression parser."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from causal.data import load_data, read_table, write_csv
from causal.expr import parse_expression, tokenize
from causal.spec import load_scm, parse_scm

DATA = Path(__file__).parent / "data" / "causal"


def _raw(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def test_fixture_models_parse_with_expected_structure() -> None:
    sprinkler = load_scm(DATA / "sprinkler.json")
    assert sprinkler.order[0] == "cloudy" and sprinkler.order[-1] == "wet_grass"
    assert sprinkler.parents("wet_grass") == ("sprinkler", "rain")
    assert sprinkler.states("rain") == ("no", "yes")
    assert sprinkler.equations["wet_grass"].table.shape == (2, 2, 2)
    frontdoor = load_scm(DATA / "frontdoor_linear.json")
    assert frontdoor.latent == frozenset({"U"}) and frontdoor.observed == ("X", "M", "Y")
    push = load_scm(DATA / "push_nonlinear.json")
    assert push.equations["push_distance"].expression.names == {"speed", "friction", "mass"}


def test_do_cuts_incoming_edges_and_holds_the_node_constant() -> None:
    scm = load_scm(DATA / "triangle_linear.json")
    world = scm.do({"X": 2.5})
    assert not list(world.graph.predecessors("X")) and list(scm.graph.predecessors("X")) == ["Z"]
    assert world.equations["X"].intercept == 2.5 and world.equations["X"].noise_std == 0.0
    sprinkler = load_scm(DATA / "sprinkler.json").do({"rain": "yes"})
    assert sprinkler.equations["rain"].table.tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="'rain' has no state 'maybe'"):
        load_scm(DATA / "sprinkler.json").do({"rain": "maybe"})
    with pytest.raises(KeyError, match="unknown intervened node 'Q'"):
        scm.do({"Q": 1.0})


def _mutated(name: str, change) -> dict:
    raw = copy.deepcopy(_raw(name))
    change(raw)
    return raw


def _set(path: list, value):
    def change(raw: dict) -> None:
        target = raw
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


BAD_MODELS = [
    # (model, mutation, expected message fragment)
    ("chain_linear", _set(["equations", "X", "parents"], ["Y"]), "cycle through node"),
    ("chain_linear", _set(["equations", "M", "parents"], ["X", "Q"]), "node 'M': unknown parent 'Q'"),
    ("chain_linear", _set(["equations", "Y", "coefficients"], {}), "node 'Y': parent 'M' has no coefficient"),
    ("chain_linear", _set(["equations", "Y", "coefficients"], {"M": 1, "X": 2}), "node 'Y': coefficient for 'X'"),
    ("chain_linear", _set(["equations", "M", "noise_std"], -1), "node 'M': noise_std must be >= 0"),
    ("chain_linear", _set(["equations", "M", "intercept"], "big"), "node 'M': intercept must be a number"),
    ("chain_linear", _set(["scm_type"], "quantum"), "scm_type must be one of"),
    ("chain_linear", _set(["format_version"], 2), "unsupported format_version 2"),
    ("chain_linear", _set(["latent"], ["Q"]), "latent node 'Q'"),
    ("chain_linear", _set(["nodes"], ["X", "M"]), "equation for unknown node 'Y'"),
    ("chain_linear", _set(["nodes"], ["X", "M", "Y", "W"]), "node 'W' has no equation"),
    (
        "sprinkler",
        _set(["equations", "rain", "cpt"], [{"given": {"cloudy": "no"}, "p": [0.8, 0.2]}]),
        "node 'rain': CPT has no row for given {'cloudy': 'yes'}",
    ),
    ("sprinkler", _set(["equations", "rain", "cpt", 0, "p"], [0.8, 0.3]), "node 'rain': probabilities of CPT row 0"),
    ("sprinkler", _set(["equations", "rain", "cpt", 0, "p"], [1.2, -0.2]), "node 'rain': CPT row 0 has invalid"),
    (
        "sprinkler",
        _set(["equations", "rain", "cpt", 1, "given"], {"cloudy": "maybe"}),
        "node 'rain': CPT row 1 gives parent 'cloudy' state 'maybe'",
    ),
    ("sprinkler", _set(["equations", "rain", "cpt", 1, "given"], {}), "node 'rain': CPT row 1 does not give parent"),
    ("sprinkler", _set(["equations", "rain", "cpt", 1, "given"], {"cloudy": "no"}), "node 'rain': CPT row 1 repeats"),
    ("sprinkler", _set(["equations", "rain", "cpt", 0, "p"], [1.0]), "node 'rain': CPT row 0 must have 'p'"),
    ("sprinkler", _set(["equations", "rain", "states"], ["no", "no"]), "node 'rain': states listed twice"),
    ("push_nonlinear", _set(["equations", "speed", "expr"], "mass ^ 2"), "node 'speed': unexpected token '^'"),
    ("push_nonlinear", _set(["equations", "speed", "expr"], "__import__('os')"), "unknown function '__import__'"),
    ("push_nonlinear", _set(["equations", "speed", "expr"], "2*speed_of_light"), "unknown name 'speed_of_light'"),
    ("push_nonlinear", _set(["equations", "speed", "expr"], "mass.__class__"), "unknown name 'mass.__class__'"),
    ("push_nonlinear", _set(["equations", "speed", "expr"], "(mass + 1"), "unexpected end of expression"),
    (
        "push_nonlinear",
        _set(["equations", "speed"], {"parents": ["mass"], "noise_std": 1}),
        "node 'speed': equation is",
    ),
]


@pytest.mark.parametrize(("name", "change", "message"), BAD_MODELS)
def test_invalid_models_are_rejected_naming_the_problem(name: str, change, message: str) -> None:
    with pytest.raises((ValueError, TypeError)) as caught:
        parse_scm(_mutated(name, change))
    assert message in str(caught.value)


def test_load_scm_names_the_file_on_bad_json_and_missing_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON"):
        load_scm(broken)
    with pytest.raises(FileNotFoundError, match="SCM file not found"):
        load_scm(tmp_path / "absent.json")
    cyclic = tmp_path / "cyclic.json"
    cyclic.write_text(json.dumps(_mutated("chain_linear", _set(["equations", "X", "parents"], ["Y"]))))
    with pytest.raises(ValueError, match=r"cyclic.json: the graph has a cycle"):
        load_scm(cyclic)


def test_rounded_probabilities_are_accepted_and_renormalised() -> None:
    raw = _mutated("sprinkler", _set(["equations", "cloudy", "cpt", 0, "p"], [0.3333, 0.6666]))
    table = parse_scm(raw).equations["cloudy"].table
    assert table.sum() == pytest.approx(1.0) and table[0] == pytest.approx(1 / 3, abs=1e-4)


def test_numeric_state_names_are_matched_as_text() -> None:
    raw = {
        "scm_type": "discrete",
        "nodes": ["A", "B"],
        "equations": {
            "A": {"states": [0, 1], "cpt": [{"given": {}, "p": [0.5, 0.5]}]},
            "B": {
                "parents": ["A"],
                "states": ["0", "1"],
                "cpt": [{"given": {"A": 0}, "p": [1, 0]}, {"given": {"A": "1"}, "p": [0, 1]}],
            },
        },
    }
    scm = parse_scm(raw)
    assert scm.states("A") == ("0", "1") and scm.state_index("A", 1) == 1


def test_latent_node_listed_only_under_latent_is_part_of_the_model() -> None:
    raw = _raw("frontdoor_linear")
    raw["nodes"] = ["X", "M", "Y"]
    scm = parse_scm(raw)
    assert "U" in scm.nodes and scm.latent == {"U"} and scm.parents("Y") == ("M", "U")


class TestExpressions:
    @pytest.mark.parametrize(
        ("text", "reference"),
        [
            ("-x**2", lambda x: -(x**2)),
            ("2**3**2", lambda x: 2 ** (3**2)),
            ("1 - 2 - x", lambda x: (1 - 2) - x),
            ("8 / 4 / x", lambda x: (8 / 4) / x),
            ("2*x**2 + 3*x - 1", lambda x: 2 * x**2 + 3 * x - 1),
            ("-(x + 1) * +2", lambda x: -(x + 1) * 2),
            ("x**-1", lambda x: x**-1.0),
        ],
    )
    def test_precedence_matches_python(self, text: str, reference) -> None:
        values = np.array([2.0, -3.0])
        result = parse_expression(text, ["x"]).evaluate({"x": values})
        assert np.broadcast_to(result, (2,)).tolist() == pytest.approx([reference(v) for v in values])

    def test_functions_and_dotted_names(self) -> None:
        expression = parse_expression(
            "0.5*speed**2 - 0.3*table.friction + 0.2*sin(3*red_block.mass)",
            ["speed", "table.friction", "red_block.mass"],
        )
        value = expression.evaluate({"speed": 1.0, "table.friction": 0.5, "red_block.mass": 0.2})
        assert float(value) == pytest.approx(0.5 - 0.15 + 0.2 * np.sin(0.6))
        for name, fn in (
            ("cos", np.cos),
            ("exp", np.exp),
            ("log", np.log),
            ("sqrt", np.sqrt),
            ("tanh", np.tanh),
            ("abs", np.abs),
        ):
            assert float(parse_expression(f"{name}(x)").evaluate({"x": 0.7})) == pytest.approx(fn(0.7))

    def test_numbers_in_all_forms(self) -> None:
        assert float(parse_expression("1e-3 + .5 + 2. + 1.5E2").evaluate({})) == pytest.approx(152.501)

    @pytest.mark.parametrize(
        ("text", "token"),
        [
            ("x ^ 2", "'^'"),
            ("x; y", "';'"),
            ("x[0]", "'['"),
            ("lambda", "'lambda'"),
            ("x y", "'y'"),
            ("x,", "','"),
            ("open(x)", "'open'"),
            ("x == 1", "'='"),
            ("'a'", '"\'"'),
        ],
    )
    def test_anything_else_is_an_error_naming_the_token(self, text: str, token: str) -> None:
        with pytest.raises(ValueError) as caught:
            parse_expression(text, ["x"])
        assert token in str(caught.value)

    def test_tokens_carry_positions(self) -> None:
        assert [(t.kind, t.text, t.position) for t in tokenize("a + 2")] == [
            ("name", "a", 0),
            ("op", "+", 2),
            ("number", "2", 4),
            ("end", "", 5),
        ]


def test_csv_round_trip_and_errors(tmp_path: Path) -> None:
    scm = load_scm(DATA / "sprinkler.json")
    path = write_csv(tmp_path / "d.csv", {"cloudy": ["no", "yes"], "rain": ["yes", "yes"]})
    assert read_table(path) == {"cloudy": ["no", "yes"], "rain": ["yes", "yes"]}
    assert load_data(scm, path)["cloudy"].tolist() == [0, 1]
    assert not list(tmp_path.glob(".*tmp")), "no temporary file may be left behind"
    (tmp_path / "bad.csv").write_text("cloudy,rain\nno,drizzle\n")
    with pytest.raises(ValueError, match="column 'rain' has value 'drizzle'"):
        load_data(scm, tmp_path / "bad.csv")
    (tmp_path / "ragged.csv").write_text("cloudy,rain\nno\n")
    with pytest.raises(ValueError, match="line 2 has 1 values"):
        read_table(tmp_path / "ragged.csv")
    with pytest.raises(ValueError, match="different lengths"):
        write_csv(tmp_path / "x.csv", {"a": [1.0], "b": [1.0, 2.0]})
    assert not (tmp_path / "x.csv").exists()
