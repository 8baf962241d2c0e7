"""Optional LLM back end: ask a chat model for the plan JSON, check it against the domain, else fall back.

Any OpenAI-compatible ``/v1/chat/completions`` endpoint works (vLLM, Ollama, llama.cpp server), reached
with the standard library only; a local Hugging Face causal LM works through the same `ChatClient`
protocol (see ``experiments/kitchen/llm_local.py``). The answer must be exactly the plan JSON (optionally in one
```json fence); it is validated like any plan: known predicates and skills, objects present in the scene,
every precondition true when simulated, every goal reached. Anything else, and an unreachable server,
sends the instruction to the fallback planner, and the trace says why.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from agent.errors import InputError
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


class OpenAIChatClient:
    """Client for an OpenAI-compatible chat-completions endpoint (``POST {url}/v1/chat/completions``)."""

    def __init__(self, url: str, model: str, timeout: float = 30.0, api_key: str | None = None,
                 max_tokens: int = 512) -> None:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"the LLM URL must start with http:// or https://, got {url!r}")
        base = url.rstrip("/")
        self.endpoint = base if base.endswith("/chat/completions") else (
            f"{base}/chat/completions" if base.endswith("/v1") else f"{base}/v1/chat/completions")
        self.model = model
        self.timeout = timeout
        self.api_key = api_key
        self.max_tokens = max_tokens

    @property
    def name(self) -> str:
        return f"openai-compatible {self.endpoint} model={self.model}"

    def complete(self, messages: list[dict[str, str]]) -> str:
        body = json.dumps({"model": self.model, "messages": messages, "temperature": 0,
                           "max_tokens": self.max_tokens}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.endpoint, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.loads(response.read().decode("utf-8"))
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            raise ChatError(f"cannot reach {self.endpoint}: {error}") from error
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ChatError(f"{self.endpoint} did not answer JSON: {error}") from error
        try:
            return str(payload["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError) as error:
            raise ChatError(f"{self.endpoint} answered without choices[0].message.content: {payload!r:.200}") from error


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


class LLMPlanner:
    """Plans with a chat model; validated answers are used, anything else goes to `fallback`.

    Args:
        client: Where to send the prompt.
        fallback: The planner used when the model's answer is unusable (normally `GroundedPlanner`).
    """

    name = "llm"

    def __init__(self, client: ChatClient, fallback: Planner) -> None:
        self.client = client
        self.fallback = fallback

    def plan(self, instruction: str, objects: Sequence[str] = OBJECTS, facts: Sequence[Sequence[str]] | None = None,
             memory: MemoryInput = None) -> Plan:
        """The model's plan if it is valid; else the fallback's plan, with the reason in its trace notes."""
        notes: list[str] = []
        state = start_state(objects, facts, as_memory(memory), notes)
        try:
            data = parse_answer(self.client.complete(build_messages(instruction, state)))
            if set(data) == {"refuse"}:
                raise InputError(f"the model refused {data['refuse']!r}")
            goal, steps = validate_answer(data, state)
        except ChatError as error:
            return self._fall_back(instruction, objects, facts, memory, f"LLM unreachable ({error})")
        except (ValueError, TypeError, KeyError) as error:
            return self._fall_back(instruction, objects, facts, memory, f"LLM answer rejected ({error})")
        trace = PlanTrace(planner=f"llm ({self.client.name})", notes=notes)
        stages = tuple((p,) for p in goal)
        return Plan(instruction, stages, steps, _step_stages(state, stages, steps), trace)

    def replan(self, plan: Plan, facts: Sequence[Sequence[str]], objects: Sequence[str] | None = None,
               from_stage: int = 0, memory: MemoryInput = None) -> Plan:
        """Replanning keeps the goal already agreed on, so the symbolic fallback planner does it."""
        replan = getattr(self.fallback, "replan", None)
        if replan is None:
            raise TypeError(f"the fallback planner {type(self.fallback).__name__} cannot replan")
        return replan(plan, facts, objects, from_stage, memory)

    def _fall_back(self, instruction: str, objects: Sequence[str], facts: Sequence[Sequence[str]] | None,
                   memory: MemoryInput, reason: str) -> Plan:
        logger.info("%s; falling back to the built-in planner", reason)
        plan = self.fallback.plan(instruction, objects, facts, memory)
        plan.trace.notes.insert(0, f"{reason}; fell back to the {getattr(self.fallback, 'name', 'built-in')} planner")
        plan.trace.planner = f"{plan.trace.planner} (fallback from llm)"
        return plan
