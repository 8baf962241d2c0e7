"""`embodia causal`: query and sample structural causal models, and run simulator studies.

    embodia causal query MODEL.json QUERIES.json --json
    embodia causal sample MODEL.json -n 1000 --seed 0 [--do X=1.5 ...] --out data.csv
    embodia causal study --scene kitchen --treatment red_block.mass --values 0.1,0.2,0.4,0.8 \
        --outcome push_distance [--confounded-by table.friction] --episodes 40 --out runs/mass_study

Bad model or query files end with a one-line error and exit code 2 (raised as ValueError/KeyError/
TypeError/FileNotFoundError and turned into messages by `experiments.cli`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from experiments.common import args as args_types
from experiments.common.errors import InputError, InputTypeError
from experiments.common.jsonio import to_json_text


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `causal` and its actions (query, sample, study) to the top-level parser."""
    parser = subparsers.add_parser("causal", help="structural causal models: query, sample, simulator studies")
    actions = parser.add_subparsers(dest="causal_command", required=True, metavar="ACTION")

    query = actions.add_parser("query", help="answer causal queries against an SCM JSON file")
    query.add_argument("model", help="SCM JSON file (format in causal/README.md)")
    query.add_argument("queries", help="JSON file holding one query object or a list of them")
    query.add_argument("--json", action="store_true", help="print the answers as JSON (same order as the queries)")
    query.set_defaults(func=_query)

    sample = actions.add_parser("sample", help="draw data from an SCM into a CSV file")
    sample.add_argument("model", help="SCM JSON file")
    sample.add_argument("-n", type=int, required=True, help="number of rows")
    sample.add_argument("--seed", type=args_types.seed, default=0, help="random seed (same seed, same rows)")
    sample.add_argument("--do", action="append", default=[], metavar="NODE=VALUE", help="intervention; repeatable")
    sample.add_argument("--include-latent", action="store_true", help="also write the latent nodes")
    sample.add_argument("--out", required=True, type=args_types.output_file, help="CSV file to write (atomically)")
    sample.set_defaults(func=_sample)

    from experiments.causal_study.arguments import add_study_arguments

    study = actions.add_parser("study", help="interventional vs observational study in the kitchen simulator")
    add_study_arguments(study)
    study.set_defaults(func=_study)


def _read_json(path: str, what: str) -> Any:
    from causal.jsonfile import read_json

    return read_json(path, what)


def _query(args: argparse.Namespace) -> int:
    from causal.queries import answer_queries
    from causal.spec import load_scm

    scm = load_scm(args.model)
    queries = _read_json(args.queries, "queries")
    if not isinstance(queries, (dict, list)):
        raise InputTypeError(f"{args.queries}: expected a query object or a list of them, got {type(queries).__name__}")
    answers = answer_queries(scm, queries, base_dir=Path(args.queries).parent)
    if args.json:
        print(to_json_text(answers))
        return 0
    for number, answer in enumerate(answers if isinstance(answers, list) else [answers], start=1):
        details = {k: v for k, v in answer.items() if k not in ("type", "answer", "sets")}
        shown = answer.get("answer", answer.get("sets", answer.get("directed")))
        print(f"{number}. {answer['type']}: {shown}  {to_json_text(details, indent=None)}")
    return 0


def parse_interventions(items: list[str]) -> dict[str, str]:
    """``["X=1.5", "Y=on"]`` -> ``{"X": "1.5", "Y": "on"}``; the model converts the values."""
    result = {}
    for item in items:
        node, sep, value = item.partition("=")
        if not sep or not node.strip() or not value.strip():
            raise InputError(f"--do expects NODE=VALUE, got {item!r}")
        result[node.strip()] = value.strip()
    return result


def _sample(args: argparse.Namespace) -> int:
    import numpy as np

    from causal.data import write_csv
    from causal.sampling import decode, sample
    from causal.spec import load_scm

    scm = load_scm(args.model)
    if args.n < 1:
        raise InputError(f"-n must be at least 1, got {args.n}")
    do = parse_interventions(args.do)
    values = sample(scm, args.n, np.random.default_rng(args.seed), do=do)
    nodes = scm.nodes if args.include_latent else scm.observed
    path = write_csv(args.out, {node: decode(scm, node, values[node]) for node in nodes})
    print(f"wrote {args.n} rows of {list(nodes)} to {path}")
    return 0


def _study(args: argparse.Namespace) -> int:
    from experiments.causal_study.study import run_study_from_args

    return run_study_from_args(args)
