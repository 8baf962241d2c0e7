"""The LLM back end against a tiny local HTTP server (127.0.0.1 only) and a tiny local causal LM."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent.errors import PlanningError
from agent.planner import GroundedPlanner
from agent.planner.llm import LLMPlanner, OpenAIChatClient, parse_answer
from agent.skills import OBJECTS
from experiments.cli import main
from perception.text import HashingTextEncoder

VALID = {"goal": [{"predicate": "in", "args": ["red_block", "bowl"]}],
         "plan": [{"skill": "pick", "args": ["red_block"]}, {"skill": "place", "args": ["bowl"]}]}


class FakeChatServer:
    """Answers each POST with the next queued (status, content) and records the requests."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, str]] = []
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                server.requests.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
                status, content = server.answers.pop(0) if server.answers else (500, "")
                body = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture()
def server() -> Iterator[FakeChatServer]:
    with FakeChatServer() as fake:
        yield fake


@pytest.fixture(scope="module")
def grounded() -> GroundedPlanner:
    return GroundedPlanner(HashingTextEncoder())


def llm(server: FakeChatServer, grounded: GroundedPlanner) -> LLMPlanner:
    return LLMPlanner(OpenAIChatClient(server.url, "tiny-model", timeout=5), grounded)


def test_valid_answer_is_used_and_the_prompt_lists_the_scene(server, grounded) -> None:
    server.answers.append((200, json.dumps(VALID)))
    plan = llm(server, grounded).plan("drop the red thing in the bowl", ["red_block", "bowl", "plate"])
    assert plan.to_json() == VALID
    assert plan.trace.planner.startswith("llm")
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["model"] == "tiny-model"
    user = request["body"]["messages"][-1]["content"]
    assert "red_block, bowl, plate, table" in user and "drop the red thing in the bowl" in user


def test_fenced_answer_is_accepted(server, grounded) -> None:
    server.answers.append((200, "```json\n" + json.dumps(VALID) + "\n```"))
    assert llm(server, grounded).plan("put the red block in the bowl", OBJECTS).trace.planner.startswith("llm")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("Sure! First pick up the red block, then place it.", "not a JSON object"),
        (json.dumps({"goal": VALID["goal"], "plan": VALID["plan"][::-1]}), "breaks a precondition"),
        (json.dumps({"goal": VALID["goal"], "plan": VALID["plan"][:1]}), "does not reach its goal"),
        (json.dumps({"goal": [{"predicate": "in", "args": ["red_block", "fridge"]}], "plan": []}), "container"),
        (json.dumps({"goal": VALID["goal"], "plan": VALID["plan"], "comment": "hi"}), "exactly the keys"),
        (json.dumps({"goal": [{"predicate": "in", "args": ["mug", "bowl"]}],
                     "plan": [{"skill": "pick", "args": ["mug"]}, {"skill": "place", "args": ["bowl"]}]}),
         "not in the scene: mug"),
        (json.dumps({"refuse": "the red block"}), "the model refused"),
    ],
)
def test_invalid_answers_fall_back_and_say_why(server, grounded, answer: str, reason: str) -> None:
    server.answers.append((200, answer))
    plan = llm(server, grounded).plan("put the red block in the bowl", ["red_block", "bowl", "table"])
    assert [str(c) for c in plan] == ["pick(red_block)", "place(bowl)"]
    assert "fallback from llm" in plan.trace.planner
    assert plan.trace.notes[0].startswith("LLM answer rejected") and reason in plan.trace.notes[0]


def test_server_errors_and_unreachable_servers_fall_back(server, grounded) -> None:
    server.answers.append((500, "boom"))
    plan = llm(server, grounded).plan("put the red block in the bowl", OBJECTS)
    assert plan.trace.notes[0].startswith("LLM unreachable")
    closed = LLMPlanner(OpenAIChatClient("http://127.0.0.1:9", "x", timeout=2), grounded)
    assert closed.plan("open the drawer", OBJECTS).trace.notes[0].startswith("LLM unreachable")


def test_fallback_still_refuses_what_cannot_be_grounded(server, grounded) -> None:
    server.answers.append((200, json.dumps({"refuse": "the purple block"})))
    with pytest.raises(PlanningError) as caught:
        llm(server, grounded).plan("put the purple block in the bowl", OBJECTS)
    assert caught.value.phrase == "the purple block"


def test_answer_parsing_is_strict() -> None:
    assert parse_answer(' {"a": 1} ') == {"a": 1}
    with pytest.raises(ValueError, match="JSON object"):
        parse_answer("[1, 2]")
    with pytest.raises(ValueError, match="not a JSON object"):
        parse_answer('Here you go: {"goal": []}')
    with pytest.raises(ValueError, match="http"):
        OpenAIChatClient("127.0.0.1:8000", "m")


def test_cli_llm_planner(server, capsys) -> None:
    server.answers.append((200, json.dumps(VALID)))
    code = main(["plan", "put the red block in the bowl", "--json", "--encoder", "hashing", "--planner", "llm",
                 "--llm-url", server.url + "/v1", "--llm-model", "tiny"])
    assert code == 0
    assert json.loads(capsys.readouterr().out) == VALID
    server.answers.append((200, "not json"))
    assert main(["plan", "put the red block in the bowl", "--json", "--encoder", "hashing", "--planner", "llm",
                 "--llm-url", server.url, "--llm-model", "tiny"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == VALID and "LLM answer rejected" in captured.err
    assert main(["plan", "x", "--planner", "llm", "--encoder", "hashing"]) == 2
    assert "--llm-url" in capsys.readouterr().err


def test_local_causal_lm_directory_falls_back_on_gibberish(tmp_path: Path, grounded) -> None:
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from experiments.kitchen.llm_local import HFChatClient
    from perception.text import bundled_minilm_path

    tokenizer = AutoTokenizer.from_pretrained(str(bundled_minilm_path()), local_files_only=True)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=1024, n_embd=16, n_layer=1, n_head=2)
    GPT2LMHeadModel(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    client = HFChatClient(tmp_path, max_new_tokens=6)
    assert isinstance(client.complete([{"role": "user", "content": "hi"}]), str)
    plan = LLMPlanner(client, grounded).plan("put the red block in the bowl", OBJECTS)
    assert plan.trace.notes[0].startswith("LLM answer rejected")
    assert [str(c) for c in plan] == ["pick(red_block)", "place(bowl)"]
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        HFChatClient(tmp_path / "missing")


def test_llm_plans_can_be_replanned_from_the_scene(server, grounded) -> None:
    server.answers.append((200, json.dumps(VALID)))
    planner = llm(server, grounded)
    plan = planner.plan("put the red block in the bowl", OBJECTS)
    assert plan.step_stages == (0, 0)
    again = planner.replan(plan, [["in", "red_block", "drawer"], ["closed", "drawer"]], OBJECTS,
                           plan.step_stages[1])
    assert [str(c) for c in again] == ["open(drawer)", "pick(red_block)", "place(bowl)"]
