"""`embodia memory …`: look into, add to, export and import the knowledge store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from experiments.common import args as args_types
from experiments.common.errors import InputError
from experiments.common.jsonio import to_json_text

DEFAULT_DB = Path("runs") / "memory.sqlite"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `memory` and its sub-commands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"store file (default: {DEFAULT_DB})")
    parser = subparsers.add_parser("memory", help="query and edit the knowledge store")
    commands = parser.add_subparsers(dest="memory_command", required=True, metavar="ACTION")

    query = commands.add_parser("query", parents=[common], help="facts, episodes and causal facts nearest a sentence")
    query.add_argument("text")
    query.add_argument("--k", type=int, default=5, help="results per kind (default: 5)")
    query.add_argument("--encoder", choices=("minilm", "hashing"), default="minilm",
                       help="text encoder (default: minilm, the real model)")
    query.add_argument("--json", action="store_true", help="print JSON instead of a table")
    query.set_defaults(func=_query)

    facts = commands.add_parser("facts", parents=[common], help="everything remembered about an entity")
    facts.add_argument("entity")
    facts.add_argument("--history", action="store_true", help="include superseded facts")
    facts.add_argument("--json", action="store_true", help="print JSON instead of a table")
    facts.set_defaults(func=_facts)

    add = commands.add_parser("add-fact", parents=[common], help="assert a fact (provenance: user)")
    add.add_argument("subject")
    add.add_argument("relation")
    add.add_argument("object")
    add.add_argument("--confidence", type=float, default=1.0, help="in [0, 1] (default: 1.0)")
    add.add_argument("--source", default="user", help="provenance: user, study:NAME or episode:UID (default: user)")
    add.set_defaults(func=_add_fact)

    export = commands.add_parser("export", parents=[common], help="write the store as JSON Lines (atomically)")
    export.add_argument("--out", type=args_types.output_file, required=True)
    export.set_defaults(func=_export)

    load = commands.add_parser("import", parents=[common], help="merge a JSON Lines export (all or nothing)")
    load.add_argument("file", type=Path)
    load.set_defaults(func=_import)

    stats = commands.add_parser("stats", parents=[common], help="row counts and skill statistics")
    stats.set_defaults(func=_stats)


MAKE_A_STORE = ("make one with `embodia memory add-fact SUBJECT RELATION OBJECT --db {db}`, "
                "`embodia memory import EXPORT.jsonl --db {db}`, or by running episodes with "
                "`embodia run \"INSTRUCTION\" --memory {db}` (a causal study adds its findings with `--memory {db}`)")


def require_store(db: Path) -> None:
    """Refuse a missing store with a message that says how one is made (before any model loads)."""
    if not Path(db).exists():
        raise FileNotFoundError(f"knowledge store not found: {db}; " + MAKE_A_STORE.format(db=db))


def _open(args: argparse.Namespace, *, create: bool, encoder: Any = None) -> Any:
    from memory import KnowledgeStore

    if not create:
        require_store(args.db)
    return KnowledgeStore(args.db, encoder=encoder, create=create)


def _fact_row(fact: Any) -> dict[str, Any]:
    return {"subject": fact.subject, "relation": fact.relation, "object": fact.object,
            "confidence": round(fact.confidence, 4), "evidence": fact.evidence, "source": str(fact.source),
            "active": fact.active}


def _causal_row(c: Any) -> dict[str, Any]:
    interval = None if c.ci_low is None else [c.ci_low, c.ci_high]
    return {"subject": c.subject, "relation": c.relation, "object": c.object, "effect": c.effect,
            "interval": interval, "level": c.level, "source": str(c.source), "active": c.active}


def _describe(hit: Any) -> str:
    item = hit.item
    if hit.kind == "episode":
        return f"episode #{item.id}: {item.instruction!r} ({'success' if item.success else 'failure'})"
    if hit.kind == "causal":
        interval = "" if item.ci_low is None else f" [{item.ci_low:.3g}, {item.ci_high:.3g}]"
        return f"causal: {item.subject} {item.relation} {item.object} (effect {item.effect:.3g}{interval})"
    return f"fact: {item.subject} {item.relation} {item.object} (confidence {item.confidence:.2f}, {item.source})"


def _query(args: argparse.Namespace) -> int:
    from perception.text import default_text_encoder

    if args.k < 1:
        raise InputError(f"--k must be >= 1, got {args.k}")
    require_store(args.db)
    with _open(args, create=False, encoder=default_text_encoder(args.encoder)) as store:
        result = store.retrieve(args.text, k=args.k)
    hits = [*result.facts, *result.episodes, *result.causal]
    if args.json:
        rows = []
        for hit in hits:
            item = hit.item
            body = {"instruction": item.instruction, "success": item.success, "plan": item.plan} \
                if hit.kind == "episode" else (_causal_row(item) if hit.kind == "causal" else _fact_row(item))
            rows.append({"kind": hit.kind, "score": hit.score, "similarity": hit.similarity, **body})
        print(to_json_text({"query": result.query, "entities": list(result.entities), "hits": rows}))
        return 0
    print(f"query: {result.query!r}   entities: {', '.join(result.entities) or '-'}")
    for hit in sorted(hits, key=lambda h: -h.score):
        print(f"  {hit.score:6.3f}  (cos {hit.similarity:6.3f})  {_describe(hit)}")
    if not hits:
        print("  (the store is empty)")
    return 0


def _facts(args: argparse.Namespace) -> int:
    with _open(args, create=False) as store:
        facts = store.facts_about(args.entity, include_history=args.history)
        causal = store.causal_facts(args.entity, include_history=args.history)
    if args.json:
        print(to_json_text({"entity": args.entity, "facts": [_fact_row(f) for f in facts],
                          "causal": [_causal_row(c) for c in causal]}, indent=2))
        return 0
    if not facts and not causal:
        print(f"nothing remembered about {args.entity!r}")
    for fact in facts:
        mark = " " if fact.active else "~"
        print(f"{mark} {fact.subject} {fact.relation} {fact.object}  confidence={fact.confidence:.2f} "
              f"evidence={fact.evidence} source={fact.source}")
    for c in causal:
        interval = "" if c.ci_low is None else f" {c.level:.0%} CI [{c.ci_low:.4g}, {c.ci_high:.4g}]"
        print(f"{' ' if c.active else '~'} {c.subject} {c.relation} {c.object}  effect={c.effect:.4g}{interval} "
              f"source={c.source}")
    return 0


def _add_fact(args: argparse.Namespace) -> int:
    with _open(args, create=True) as store:
        fact_id = store.add_fact(args.subject, args.relation, args.object, args.confidence, source=args.source)
        fact = next(f for f in store.facts_about(args.subject) if f.id == fact_id)
    print(f"fact #{fact_id}: {fact.subject} {fact.relation} {fact.object} confidence={fact.confidence:.2f} "
          f"evidence={fact.evidence} ({args.db})")
    return 0


def _export(args: argparse.Namespace) -> int:
    from memory import export_jsonl

    with _open(args, create=False) as store:
        counts = export_jsonl(store, args.out)
    print(f"exported {sum(counts.values())} records to {args.out}: " +
          ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())))
    return 0


def _import(args: argparse.Namespace) -> int:
    from memory import import_jsonl
    from memory.transfer import parse_jsonl

    if not args.db.exists():
        parse_jsonl(args.file)  # a bad file must not leave a new empty store behind
    with _open(args, create=True) as store:
        tally = import_jsonl(store, args.file)
    print(f"imported into {args.db}: " + ", ".join(f"{n} {kind}" for kind, n in tally.items()))
    return 0


def _stats(args: argparse.Namespace) -> int:
    with _open(args, create=False) as store:
        counts = store.counts()
        skills = store.all_skill_stats()
    print(f"{args.db}: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
    if skills:
        print(f"{'skill':<10} {'args':<28} {'attempts':>8} {'success':>8} {'mean':>6} {'recent':>6}")
    for s in skills:
        print(f"{s.skill:<10} {','.join(s.args or ()):<28} {s.attempts:>8} {s.successes:>8} "
              f"{s.mean:>6.2f} {s.recent_mean:>6.2f}")
    return 0
