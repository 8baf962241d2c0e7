"""The LLM back end in the embodied loop: `run`, `demo` and `eval-chains` with `--planner llm` against a local
fake OpenAI-compatible server; an answer whose goal is not the instruction's is rejected with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from llm_fakes import FakeServer, chat_reply, send_json

from agent.planner import GroundedPlanner
from agent.planner.llm import LLMPlanner, OpenAIChatClient
from agent.skills import OBJECTS
from experiments.cli import main
from perception.text import HashingTextEncoder

SECRET = "sk-loop-test-9f8e7d6c5b4a"
WRONG_GOAL = {"goal": [{"predicate": "open", "args": ["drawer"]}], "plan": [{"skill": "open", "args": ["drawer"]}]}


def mirror_reply(request, handler) -> None:
    """A competent 'model': plans the prompt's instruction from the prompt's scene with the grounded planner."""
    user = request["body"]["messages"][-1]["content"]
    lines = dict(line.split(": ", 1) for line in user.splitlines())
    objects = [o.strip() for o in lines["Objects in the scene"].rstrip(".").split(",")]
    facts = [f.split() for f in lines["Facts now"].rstrip(".").split("; ") if f.strip()]
    plan = GroundedPlanner(HashingTextEncoder()).plan(lines["Instruction"], objects, facts)
    send_json(handler, chat_reply(json.dumps(plan.to_json())))


def fixed_reply(answer: dict):
    return lambda request, handler: send_json(handler, chat_reply(json.dumps(answer)))


def llm_args(server: FakeServer, out: Path) -> list[str]:
    return ["--planner", "llm", "--llm-url", server.url, "--llm-model", "fake", "--llm-timeout", "10",
            "--encoder", "hashing", "--out", str(out)]


@pytest.fixture(scope="module")
def grounded() -> GroundedPlanner:
    return GroundedPlanner(HashingTextEncoder())


def test_a_plan_whose_goal_is_not_the_instructions_is_rejected(grounded) -> None:
    with FakeServer(fixed_reply(WRONG_GOAL)) as server:
        plan = LLMPlanner(OpenAIChatClient(server.url, "fake", timeout=5), grounded).plan(
            "put the red block in the bowl", OBJECTS)
    assert [str(c) for c in plan] == ["pick(red_block)", "place(bowl)"]
    assert "fallback from llm" in plan.trace.planner
    assert "not the instruction's goal (in(red_block, bowl))" in plan.trace.notes[0]


def test_valid_steps_with_an_extra_declared_goal_are_rejected(grounded) -> None:
    answer = {"goal": [{"predicate": "in", "args": ["red_block", "bowl"]}, {"predicate": "open", "args": ["drawer"]}],
              "plan": [{"skill": "pick", "args": ["red_block"]}, {"skill": "place", "args": ["bowl"]},
                       {"skill": "open", "args": ["drawer"]}]}
    with FakeServer(fixed_reply(answer)) as server:
        plan = LLMPlanner(OpenAIChatClient(server.url, "fake", timeout=5), grounded).plan(
            "put the red block in the bowl", OBJECTS)
    assert "fallback from llm" in plan.trace.planner and len(plan) == 2


def test_an_open_choice_may_be_made_differently_and_the_plan_keeps_that_goal(grounded) -> None:
    default = next(c.args[0] for c in grounded.plan("pick up a block", OBJECTS).steps if c.skill == "pick")
    other = next(b for b in ("red_block", "green_block", "blue_block", "yellow_block") if b != default)
    answer = {"goal": [{"predicate": "holding", "args": [other]}], "plan": [{"skill": "pick", "args": [other]}]}
    with FakeServer(fixed_reply(answer)) as server:
        plan = LLMPlanner(OpenAIChatClient(server.url, "fake", timeout=5), grounded).plan("pick up a block", OBJECTS)
    assert plan.trace.planner.startswith("llm") and [str(c) for c in plan] == [f"pick({other})"]
    assert [str(p) for p in plan.goal] == [f"holding({other})"]
    # ...but not an object the instruction names
    answer = {"goal": [{"predicate": "holding", "args": [other]}], "plan": [{"skill": "pick", "args": [other]}]}
    with FakeServer(fixed_reply(answer)) as server:
        plan = LLMPlanner(OpenAIChatClient(server.url, "fake", timeout=5), grounded).plan(
            f"pick up the {default.split('_')[0]} block", OBJECTS)
    assert "fallback from llm" in plan.trace.planner


def test_the_plan_carries_the_instructions_goal_not_the_models(grounded) -> None:
    answer = {"goal": [{"predicate": "holding", "args": ["red_block"]}],
              "plan": [{"skill": "pick", "args": ["red_block"]}, {"skill": "place", "args": ["bowl"]}]}
    with FakeServer(fixed_reply(answer)) as server:
        plan = LLMPlanner(OpenAIChatClient(server.url, "fake", timeout=5), grounded).plan(
            "put the red block in the bowl", OBJECTS)
    # holding(red_block) is not what was asked: rejected, and the grounded goal is what the loop will check
    assert "fallback from llm" in plan.trace.planner
    assert [str(p) for p in plan.goal] == ["in(red_block, bowl)"]


def test_run_with_the_llm_planner_succeeds_sends_the_key_and_never_shows_it(tmp_path, monkeypatch, capsys,
                                                                              caplog) -> None:
    monkeypatch.setenv("EMBODIA_LLM_API_KEY", SECRET)
    with FakeServer(mirror_reply) as server:
        code = main(["-v", "run", "put the red block in the bowl", "--no-video", *llm_args(server, tmp_path)])
        headers = [r["headers"].get("Authorization") for r in server.requests]
    captured = capsys.readouterr()
    episode = (tmp_path / "episode.json").read_text()
    assert code == 0, captured.err
    assert headers and all(h == f"Bearer {SECRET}" for h in headers)
    trace = json.loads(episode)
    assert trace["success"] and trace["plans"][0]["trace"]["planner"].startswith("llm")
    for text in (captured.out, captured.err, caplog.text, episode):
        assert SECRET not in text


def test_run_rejects_a_wrong_goal_and_records_why(tmp_path) -> None:
    with FakeServer(fixed_reply(WRONG_GOAL)) as server:
        code = main(["run", "put the red block in the bowl", "--no-video", *llm_args(server, tmp_path)])
    trace = json.loads((tmp_path / "episode.json").read_text())
    assert code == 0 and trace["success"]
    assert [s["text"] for s in trace["steps"]] == ["pick up the red block", "put it in the bowl"]
    plan = trace["plans"][0]
    assert "fallback from llm" in plan["trace"]["planner"]
    assert plan["trace"]["notes"][0].startswith("LLM answer rejected (its goal (open(drawer)) is not")
    assert plan["goal"] == [{"predicate": "in", "args": ["red_block", "bowl"]}]


def test_demo_and_eval_chains_run_with_the_llm_planner(tmp_path) -> None:
    with FakeServer(mirror_reply) as server:
        demo = main(["demo", "open the drawer", *llm_args(server, tmp_path / "demo")])
        chains = main(["eval-chains", "--chains", "1", "--length", "2", *llm_args(server, tmp_path / "chains")])
        asked = len(server.requests)
    assert demo == 0 and chains == 0
    episode = json.loads((tmp_path / "demo" / "episode_1.json").read_text())
    assert episode["success"] and episode["plans"][0]["trace"]["planner"].startswith("llm")
    records = json.loads((tmp_path / "chains" / "chains.json").read_text())[0]["records"]
    assert asked >= 2 and records
    assert all(r["plans"][0]["trace"]["planner"].startswith("llm") for r in records)


def test_an_unreachable_server_falls_back_in_the_loop(tmp_path) -> None:
    code = main(["run", "open the drawer", "--no-video", "--planner", "llm", "--llm-url", "http://127.0.0.1:9",
                 "--llm-model", "x", "--llm-timeout", "2", "--encoder", "hashing", "--out", str(tmp_path)])
    trace = json.loads((tmp_path / "episode.json").read_text())
    assert code == 0 and trace["plans"][0]["trace"]["notes"][0].startswith("LLM unreachable")


def test_run_takes_a_local_model_directory(tmp_path) -> None:
    """--llm-dir works in the loop: a tiny random GPT-2 answers gibberish, so the run falls back and says so."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from perception.text import bundled_minilm_path

    model_dir = tmp_path / "tiny-lm"
    tokenizer = AutoTokenizer.from_pretrained(str(bundled_minilm_path()), local_files_only=True)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=1024, n_embd=16, n_layer=1, n_head=2)
                    ).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    code = main(["run", "open the drawer", "--no-video", "--planner", "llm", "--llm-dir", str(model_dir),
                 "--encoder", "hashing", "--out", str(tmp_path / "out")])
    trace = json.loads((tmp_path / "out" / "episode.json").read_text())
    assert code == 0 and trace["success"]
    assert trace["plans"][0]["trace"]["notes"][0].startswith("LLM answer rejected")
