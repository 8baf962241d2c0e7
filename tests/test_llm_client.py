"""The LLM client's bounds: one total deadline per request, a response-size cap, validated timeouts, an API
key from the environment that is sent but never shown. Every server here is a local fake on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import math
import time

import pytest
from llm_fakes import FakeServer, chat_reply, send_json, trickle

from agent.planner.llm import ChatError, OpenAIChatClient, api_key_from_env, validate_timeout
from experiments.cli import main

MESSAGES = [{"role": "user", "content": "hi"}]


def test_a_trickling_body_is_cut_off_at_the_total_deadline() -> None:
    server = FakeServer(lambda r, h: None)
    server.reply = trickle(server, seconds_per_byte=0.05)  # 20 bytes/s: every single read returns quickly
    with server:
        client = OpenAIChatClient(server.url, "m", timeout=1.0)
        started = time.monotonic()
        with pytest.raises(ChatError, match="within the 1 s deadline"):
            client.complete(MESSAGES)
        elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.0, elapsed


def test_trickling_headers_are_cut_off_at_the_total_deadline() -> None:
    server = FakeServer(lambda r, h: None)
    server.reply = trickle(server, seconds_per_byte=0.05, headers_too=True)
    with server:
        started = time.monotonic()
        with pytest.raises(ChatError, match="deadline"):
            OpenAIChatClient(server.url, "m", timeout=0.8).complete(MESSAGES)
        assert time.monotonic() - started < 1.8


def test_an_oversized_answer_is_refused_with_and_without_a_content_length() -> None:
    big = json.dumps(chat_reply("x" * 3_000_000))

    def announced(request, handler) -> None:
        send_json(handler, json.loads(big))

    def streamed(request, handler) -> None:  # HTTP/1.0, no Content-Length: the body ends when the socket closes
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        for start in range(0, len(big), 65536):
            handler.wfile.write(big[start:start + 65536].encode())

    for reply, message in ((announced, "announced a 3000"), (streamed, "more than 1048576 bytes")):
        with FakeServer(reply) as server:
            with pytest.raises(ChatError, match=message):
                OpenAIChatClient(server.url, "m", timeout=10).complete(MESSAGES)
    with FakeServer(announced) as server:  # a larger cap lets it through
        assert len(OpenAIChatClient(server.url, "m", timeout=10, max_response_bytes=4_000_000).complete(
            MESSAGES)) == 3_000_000


@pytest.mark.parametrize("bad", [-1, 0, math.nan, math.inf, -math.inf, "soon", None])
def test_bad_timeouts_are_refused(bad) -> None:
    with pytest.raises(ValueError, match="LLM timeout must be"):
        validate_timeout(bad)
    with pytest.raises(ValueError, match="LLM timeout must be"):
        OpenAIChatClient("http://127.0.0.1:9", "m", timeout=bad)
    assert validate_timeout("2.5") == 2.5


@pytest.mark.parametrize("command", [["plan", "open the drawer"], ["run", "open the drawer"], ["demo"],
                                     ["eval-chains"]])
@pytest.mark.parametrize("bad", ["-1", "nan", "inf", "0", "soon"])
def test_every_planning_command_takes_a_validated_llm_timeout(command, bad, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--planner", "llm", "--llm-timeout", bad])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--llm-timeout" in err and "finite number of seconds > 0" in err and bad in err


def test_api_key_comes_from_the_environment_in_order() -> None:
    assert api_key_from_env({}) is None
    assert api_key_from_env({"OPENAI_API_KEY": "b"}) == "b"
    assert api_key_from_env({"EMBODIA_LLM_API_KEY": "a", "OPENAI_API_KEY": "b"}) == "a"
    assert api_key_from_env({"EMBODIA_LLM_API_KEY": "", "OPENAI_API_KEY": "b"}) == "b"


def test_the_api_key_is_sent_as_a_bearer_header_and_never_shown(caplog) -> None:
    secret = "sk-test-0123456789abcdef"
    with FakeServer(lambda request, handler: send_json(handler, chat_reply("ok"))) as server:
        client = OpenAIChatClient(server.url, "m", timeout=5, api_key=secret)
        assert client.complete(MESSAGES) == "ok"
        assert server.requests[0]["headers"]["Authorization"] == f"Bearer {secret}"
    assert secret not in repr(client) and secret not in client.name and secret not in str(vars(client).get("name"))
    with caplog.at_level(logging.DEBUG), pytest.raises(ChatError) as caught:
        OpenAIChatClient("http://127.0.0.1:9", "m", timeout=2, api_key=secret).complete(MESSAGES)
    assert secret not in str(caught.value) and secret not in caplog.text


def test_http_errors_and_non_json_are_chat_errors() -> None:
    with FakeServer(lambda request, handler: send_json(handler, {"error": "nope"}, 503)) as server:
        with pytest.raises(ChatError, match="HTTP 503"):
            OpenAIChatClient(server.url, "m", timeout=5).complete(MESSAGES)

    def garbage(request, handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "9")
        handler.end_headers()
        handler.wfile.write(b"not json!")

    with FakeServer(garbage) as server:
        with pytest.raises(ChatError, match="did not answer JSON"):
            OpenAIChatClient(server.url, "m", timeout=5).complete(MESSAGES)
