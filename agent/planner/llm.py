"""Optional LLM back end: ask a chat model for the plan JSON, check it, else fall back.

The plan is checked against the domain and against the instruction.

Any OpenAI-compatible ``/v1/chat/completions`` endpoint works (vLLM, Ollama, llama.cpp server), reached
with the standard library only, under one total deadline per request and a response-size cap; an API key
comes from the caller (``api_key_from_env`` reads ``EMBODIA_LLM_API_KEY`` or ``OPENAI_API_KEY``) and is never
logged. A local Hugging Face causal LM works through the same `ChatClient` protocol (see
``experiments/kitchen/llm_local.py``). The answer must be exactly the plan JSON (optionally in one ```json fence);
it is validated like any plan: known predicates and skills, objects present in the scene, every
precondition true when simulated, every goal reached. It must also do what the instruction asks: where the
fallback planner grounds the instruction, the LLM's plan must reach that goal, and the plan keeps the
instruction's goal, not the model's. Anything else, and an unreachable server, sends the instruction to
the fallback planner, and the trace says why.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import logging
import math
import os
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from agent.errors import InputError, PlanningError
from agent.planner.grounded import start_state
from agent.planner.memory import MemoryInput, as_memory
from agent.planner.plan import Plan, Planner, PlanTrace
from agent.planner.search import stage_goal
from agent.skills import OBJECTS, Predicate, SkillCall
from agent.symbolic import SymbolicState, check_plan, successor

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = """You plan for a robot arm in a kitchen. Answer with one JSON object and nothing else:
{"goal": [{"predicate": NAME, "args": [...]}], "plan": [{"skill": NAME, "args": [...]}]}
Skills (preconditions -> effect):
- pick(x): gripper empty; x movable (a block or the mug), nothing on x; drawer open if x is in it -> holding x
- place(target): holding some x; target is bowl, drawer, plate, table or a free block; drawer open for the drawer
  -> x in target (bowl, drawer) or on target (plate, table, block); gripper empty
- open(drawer) / close(drawer): gripper empty; drawer closed / open -> drawer open / closed
- push(x, d): gripper empty; x movable, on the table, nothing on it; d in left, right, forward (away from the
  robot), backward (towards the robot) -> x pushed in d
- reach(x): -> gripper near x
Goal predicates: in(x, bowl|drawer), on(x, plate|table|block), open(drawer), closed(drawer), holding(x),
near(x), pushed(x, d). Use only objects present in the scene. If the instruction mentions anything that is not
in the scene, answer {"refuse": "<the phrase>"}."""


class ChatError(RuntimeError):
    """The chat model could not be asked (connection, HTTP or protocol failure)."""


@runtime_checkable
class ChatClient(Protocol):
    """Sends chat messages to a language model and returns the reply text."""

    @property
    def name(self) -> str:
        """A short description for traces, e.g. ``openai:http://127.0.0.1:8000 qwen2``."""
        ...

    def complete(self, messages: list[dict[str, str]]) -> str:
        """The assistant's reply; raises ChatError when the model cannot be reached."""
        ...


MAX_RESPONSE_BYTES = 1 << 20
"""1 MiB: far more than any plan JSON; a larger answer is refused before it can fill memory."""
API_KEY_VARIABLES = ("EMBODIA_LLM_API_KEY", "OPENAI_API_KEY")
"""Environment variables an API key is read from, first set wins (see `api_key_from_env`)."""


def validate_timeout(value: Any) -> float:
    """A request deadline in seconds: a finite number > 0.

    Raises:
        ValueError: naming what came, for negative, zero, NaN, infinite or non-numeric values.
    """
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise InputError(f"the LLM timeout must be a finite number of seconds > 0, got {value!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise InputError(f"the LLM timeout must be a finite number of seconds > 0, got {value!r}")
    return seconds


def api_key_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The API key from the first of `API_KEY_VARIABLES` that is set and not empty, else None."""
    environ = os.environ if environ is None else environ
    return next((environ[name] for name in API_KEY_VARIABLES if environ.get(name)), None)


class OpenAIChatClient:
    """Client for an OpenAI-compatible chat-completions endpoint (``POST {url}/v1/chat/completions``).

    Every request has one total deadline, `timeout` seconds from the moment it starts: connecting, sending,
    the status line, the headers and the body together. A server that trickles its answer a byte at a time
    is cut off at the deadline (a watchdog closes the socket; each read also waits at most the time left).
    The answer may be at most `max_response_bytes` long. The API key, if any, is sent as a bearer header and
    appears in no name, repr, log line or error message.

    Args:
        url: ``http(s)://host[:port]`` with an optional path (``/v1`` or the full endpoint).
        model: Model name sent with each request.
        timeout: Total seconds per request (finite, > 0).
        api_key: Bearer token, e.g. from `api_key_from_env`.
        max_tokens: Generation budget sent to the server.
        max_response_bytes: Largest answer accepted.
    """

    def __init__(self, url: str, model: str, timeout: float = 30.0, api_key: str | None = None,
                 max_tokens: int = 512, max_response_bytes: int = MAX_RESPONSE_BYTES) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InputError(f"the LLM URL must start with http:// or https://, got {url!r}")
        parts = urllib.parse.urlsplit(url)
        if not parts.hostname:
            raise InputError(f"the LLM URL has no host: {url!r}")
        if max_response_bytes < 1:
            raise InputError(f"max_response_bytes must be >= 1, got {max_response_bytes}")
        base = url.rstrip("/")
        self.endpoint = base if base.endswith("/chat/completions") else (
            f"{base}/chat/completions" if base.endswith("/v1") else f"{base}/v1/chat/completions")
        self._parts = urllib.parse.urlsplit(self.endpoint)
        self.model = model
        self.timeout = validate_timeout(timeout)
        self._api_key = api_key or None
        self.max_tokens = max_tokens
        self.max_response_bytes = int(max_response_bytes)

    @property
    def name(self) -> str:
        """Endpoint and model, for plan traces; never includes the API key."""
        return f"openai-compatible {self.endpoint} model={self.model}"

    def __repr__(self) -> str:
        key = ", api key set" if self._api_key else ""
        return f"OpenAIChatClient({self.endpoint!r}, model={self.model!r}, timeout={self.timeout}{key})"

    def complete(self, messages: list[dict[str, str]]) -> str:
        """The assistant's reply; ChatError on connection, HTTP, protocol, deadline or size failures."""
        body = json.dumps({"model": self.model, "messages": messages, "temperature": 0,
                           "max_tokens": self.max_tokens}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        raw = self._post(body, headers)
        try:
            payload = json.loads(raw.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ChatError(f"{self.endpoint} did not answer JSON: {error}") from error
        try:
            return str(payload["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError) as error:
            raise ChatError(f"{self.endpoint} answered without choices[0].message.content: {payload!r:.200}") from error

    def _post(self, body: bytes, headers: dict[str, str]) -> bytes:
        """POST `body` and return the response body, all within one deadline and the size cap."""
        parts = self._parts
        secure = parts.scheme == "https"
        connection_type = http.client.HTTPSConnection if secure else http.client.HTTPConnection
        connection = connection_type(parts.hostname, parts.port, timeout=self.timeout)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        deadline = time.monotonic() + self.timeout
        expired = threading.Event()

        def cut() -> None:  # the watchdog: unblocks any read or write still waiting at the deadline
            expired.set()
            sock = connection.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(self.timeout, cut)
        watchdog.daemon = True
        watchdog.start()
        try:
            connection.request("POST", path, body=body, headers=headers)
            sock = connection.sock
            _wait_at_most(sock, deadline)
            response = connection.getresponse()
            data = self._read_body(response, sock, deadline, expired)
            if response.status != 200:
                raise ChatError(f"{self.endpoint} answered HTTP {response.status} {response.reason}: {data[:200]!r}")
            return data
        except ChatError:
            raise
        except (OSError, http.client.HTTPException, ValueError) as error:
            if expired.is_set() or time.monotonic() >= deadline:
                raise ChatError(f"no complete answer from {self.endpoint} within the {self.timeout:g} s "
                                "deadline") from error
            raise ChatError(f"cannot reach {self.endpoint}: {error}") from error
        finally:
            watchdog.cancel()
            connection.close()

    def _read_body(self, response: http.client.HTTPResponse, sock: socket.socket | None, deadline: float,
                   expired: threading.Event) -> bytes:
        declared = response.getheader("Content-Length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_response_bytes:
            raise ChatError(f"{self.endpoint} announced a {int(declared)}-byte answer; the limit is "
                            f"{self.max_response_bytes} bytes")
        chunks: list[bytes] = []
        total = 0
        while True:
            _wait_at_most(sock, deadline)
            chunk = response.read1(65536)
            if expired.is_set():
                raise ChatError(f"no complete answer from {self.endpoint} within the {self.timeout:g} s deadline")
            if not chunk:
                break
            total += len(chunk)
            if total > self.max_response_bytes:
                raise ChatError(f"{self.endpoint} sent more than {self.max_response_bytes} bytes; answer refused")
            chunks.append(chunk)
        return b"".join(chunks)


def _wait_at_most(sock: socket.socket | None, deadline: float) -> None:
    """Let the next socket operation wait no longer than the time left (raises TimeoutError when none is)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("deadline passed")
    if sock is not None:
        sock.settimeout(remaining)


def build_messages(instruction: str, state: SymbolicState) -> list[dict[str, str]]:
    """The prompt: domain rules, the scene's objects and facts, the instruction."""
    present = [o for o in OBJECTS if o in state.objects]
    facts = "; ".join(" ".join(f) for f in state.to_facts())
    user = f"Objects in the scene: {', '.join(present)}.\nFacts now: {facts}.\nInstruction: {instruction}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


_FENCE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.DOTALL)


def parse_answer(text: str) -> dict[str, Any]:
    """The JSON object of a reply: the whole reply, or the content of one ```json fence; nothing else."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError as error:
        raise InputError(f"the answer is not a JSON object ({error.msg}): {text[:120]!r}") from error
    if not isinstance(data, dict):
        raise InputError(f"the answer must be a JSON object, got {type(data).__name__}")
    return data


def validate_answer(data: dict[str, Any], state: SymbolicState) -> tuple[tuple[Predicate, ...], tuple[SkillCall, ...]]:
    """Goal and steps of an answer, checked against the domain and simulated from `state`."""
    if set(data) != {"goal", "plan"}:
        raise InputError(f"the answer must have exactly the keys 'goal' and 'plan', got {sorted(data)}")
    if not isinstance(data["goal"], list) or not isinstance(data["plan"], list) or not data["goal"]:
        raise InputError("'goal' must be a non-empty list and 'plan' a list")
    goal = tuple(Predicate.from_json(g) for g in data["goal"])
    steps = tuple(SkillCall.from_json(s) for s in data["plan"])
    absent = sorted({a for item in (*goal, *steps) for a in item.args if a in OBJECTS and a not in state.objects})
    if absent:
        raise InputError(f"the answer uses objects not in the scene: {', '.join(absent)}")
    stages = tuple((p,) for p in goal)
    checked = check_plan(state, steps, ())
    if not checked.valid:
        raise InputError(f"the plan breaks a precondition: {checked.reason}")
    final = checked.final_state
    assert final is not None
    reached = check_plan(state, steps, stages)
    kept = stage_goal(stages, len(stages) - 1)
    if not reached.valid or not all(final.holds(p) for p in kept):
        raise InputError(f"the plan does not reach its goal: {reached.reason or 'a goal is undone at the end'}")
    return goal, steps


def _step_stages(state: SymbolicState, stages: tuple[tuple[Predicate, ...], ...],
                 steps: tuple[SkillCall, ...]) -> tuple[int, ...]:
    """For each step, the first goal stage not yet reached when it runs (what a replan restarts from)."""
    out, stage = [], 0
    for call in steps:
        while stage < len(stages) - 1 and all(state.holds(p) for p in stages[stage]):
            stage += 1
        out.append(stage)
        state = successor(state, call)
    return tuple(out)


MAX_CHOICE_VARIANTS = 256
"""Most alternative readings of the instruction's open choices tried when checking an LLM plan's goal."""


def goal_variants(grounded: Plan) -> list[tuple[tuple[Predicate, ...], ...]]:
    """The grounded plan's goal stages, then the same stages with each open choice made differently.

    For "pick up a block" the grounded planner chose one block; an LLM plan that picks another block also
    does what was asked. Only objects the planner chose among (trace groundings with ``options``) are
    swapped, and only for other options of that same choice.
    """
    variants = [grounded.stages]
    in_goal = {a for stage in grounded.stages for p in stage for a in p.args}
    for grounding in grounded.trace.groundings:
        options = list(grounding.get("options", {})) if isinstance(grounding, dict) else []
        chosen = [o for o in options if o in in_goal]
        if not chosen or len(options) <= len(chosen):
            continue
        extended = []
        for stages in variants:
            for replacement in itertools.permutations(options, len(chosen)):
                mapping = dict(zip(chosen, replacement, strict=True))
                swapped = tuple(tuple(Predicate(p.predicate, tuple(mapping.get(a, a) for a in p.args)) for p in stage)
                                for stage in stages)
                if swapped not in extended:
                    extended.append(swapped)
                if len(extended) >= MAX_CHOICE_VARIANTS:
                    break
        variants = extended or variants
    return variants


def matching_goal(state: SymbolicState, goal: tuple[Predicate, ...], steps: tuple[SkillCall, ...],
                  grounded: Plan) -> tuple[tuple[Predicate, ...], ...]:
    """The instruction's goal stages that an LLM plan reaches, with its declared goal inside them.

    The stages are as grounded, or with an open choice made otherwise; ValueError saying why when there is none.

    Consistent means: simulated from `state`, the LLM's steps reach every stage of the instruction's goal in
    order and leave its final goals true, and every predicate the LLM declared as its goal is one the
    instruction asked for. So an answer whose goal is ``open(drawer)`` for "put the red block in the bowl"
    is rejected even if its steps are valid.
    """
    for stages in goal_variants(grounded):
        asked = {p for stage in stages for p in stage}
        if not set(goal) <= asked:
            continue
        checked = check_plan(state, steps, stages)
        final = checked.final_state
        if checked.valid and final is not None and all(final.holds(p) for p in stage_goal(stages, len(stages) - 1)):
            return stages
    wanted = "; ".join(", ".join(str(p) for p in stage) for stage in grounded.stages)
    declared = ", ".join(str(p) for p in goal)
    raise InputError(f"its goal ({declared}) is not the instruction's goal ({wanted}) or its plan does not "
                     "reach that goal")


class LLMPlanner:
    """Plans with a chat model; an answer is used only if it is valid and does what the instruction asks.

    The fallback planner (normally `GroundedPlanner`) grounds the instruction first. Where it can, the
    model's plan must reach the instruction's grounded goal (`matching_goal`; an open choice such as "a
    block" may be made differently), and the plan returned carries that goal, never the model's own, so
    the loop judges the episode by what was asked. Where the fallback refuses the instruction, a valid
    answer is used with its own goal and the trace says so. Anything else, and an unreachable server,
    returns the fallback's plan with the reason first in its trace notes.

    Args:
        client: Where to send the prompt.
        fallback: The planner that grounds the instruction and plans when the model's answer is unusable.
    """

    name = "llm"

    def __init__(self, client: ChatClient, fallback: Planner) -> None:
        self.client = client
        self.fallback = fallback

    def plan(self, instruction: str, objects: Sequence[str] = OBJECTS, facts: Sequence[Sequence[str]] | None = None,
             memory: MemoryInput = None) -> Plan:
        """The model's plan if it is valid and reaches the instruction's goal; else the fallback's plan."""
        notes: list[str] = []
        state = start_state(objects, facts, as_memory(memory), notes)
        grounded: Plan | None = None
        refusal: PlanningError | None = None
        try:
            grounded = self.fallback.plan(instruction, objects, facts, memory)
        except PlanningError as error:
            refusal = error
        try:
            data = parse_answer(self.client.complete(build_messages(instruction, state)))
            if set(data) == {"refuse"}:
                raise InputError(f"the model refused {data['refuse']!r}")
            goal, steps = validate_answer(data, state)
            if grounded is not None:
                stages = matching_goal(state, goal, steps, grounded)
                notes.append("LLM plan accepted: it reaches the instruction's goal as the "
                             f"{getattr(self.fallback, 'name', 'built-in')} planner grounded it")
            else:
                stages = tuple((p,) for p in goal)
                notes.append(f"the {getattr(self.fallback, 'name', 'built-in')} planner cannot ground the "
                             f"instruction ({refusal}); the LLM's own goal is used")
        except ChatError as error:
            return self._fall_back(grounded, refusal, f"LLM unreachable ({error})")
        except (ValueError, TypeError, KeyError) as error:
            return self._fall_back(grounded, refusal, f"LLM answer rejected ({error})")
        trace = PlanTrace(planner=f"llm ({self.client.name})", notes=notes)
        if grounded is not None:
            trace.groundings = list(grounded.trace.groundings)
            if len(grounded.trace.contexts) == len(stages):
                trace.contexts = list(grounded.trace.contexts)
        return Plan(instruction, stages, steps, _step_stages(state, stages, steps), trace)

    def replan(self, plan: Plan, facts: Sequence[Sequence[str]], objects: Sequence[str] | None = None,
               from_stage: int = 0, memory: MemoryInput = None) -> Plan:
        """Replanning keeps the goal already agreed on, so the symbolic fallback planner does it."""
        replan = getattr(self.fallback, "replan", None)
        if replan is None:
            raise TypeError(f"the fallback planner {type(self.fallback).__name__} cannot replan")
        return replan(plan, facts, objects, from_stage, memory)

    def _fall_back(self, grounded: Plan | None, refusal: PlanningError | None, reason: str) -> Plan:
        logger.info("%s; falling back to the built-in planner", reason)
        if grounded is None:
            assert refusal is not None
            raise refusal
        grounded.trace.notes.insert(0, f"{reason}; fell back to the {getattr(self.fallback, 'name', 'built-in')} "
                                       "planner")
        grounded.trace.planner = f"{grounded.trace.planner} (fallback from llm)"
        return grounded
