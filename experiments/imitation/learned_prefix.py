"""Chain starts built by the shipped learned skills: the states a learned skill meets inside `--skills learned`.

Why: `envs.chain_starts` builds a skill's start by running a random sub-chain with the scripted experts. In a chain
of learned skills, though, the previous skills are learned too, and they leave the kitchen differently: a learned
place lets go elsewhere and leaves the arm elsewhere, a learned pick holds its object at another grasp. Measured
(RESULTS.md), learned pick succeeded on 91% of scripted-prefix chain starts but on 78% of its calls inside learned
chains. Starting from where the shipped learned skills leave the scene puts those states into evaluation and into
DAgger's data.

`LearnedPrefixRunner` is the env's `prefix_runner`: each prefix skill (and the task's setup, such as the pick
before a place) runs with the shipped learned policy for it, as `--skills learned` runs it (its mean action, the
agent's skill-call sentence, ended at success or the task's horizon, no settling), or with the scripted expert
where no learned policy covers the call. A failed skill ends the prefix, as in `envs.chain_starts`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.loop import SkillPolicy
from agent.policy import DEFAULT_DIR, LearnedSkillProvider
from agent.skills import SkillCall
from envs.chain_starts import run_skill
from envs.tasks import TaskSpec
from experiments.common.errors import InputError

PREFIXES = ("scripted", "learned", "mixed")
"""Who runs a chain start's sub-chain: the scripted experts, the shipped learned skills, or each in turn (even
episode seeds scripted, odd learned)."""


def check_prefix(prefix: str, start: str = "chain") -> str:
    """`prefix` if it names a known prefix runner usable with `start`, else an InputError saying why."""
    if prefix not in PREFIXES:
        raise InputError(f"unknown prefix runner {prefix!r}; expected one of: {', '.join(PREFIXES)}")
    if prefix != "scripted" and start != "chain":
        raise InputError(f"a {prefix} prefix builds chain starts; it needs start 'chain', got {start!r}")
    return prefix


def call_for_task(spec: TaskSpec) -> SkillCall:
    """The planner's skill call that an env task carries out (`place_in(x, bowl)` is `place(bowl)`)."""
    if spec.name in ("place_in", "place_on"):
        return SkillCall("place", (spec.args[1],))
    return SkillCall(spec.name, tuple(spec.args))


def _no_fallback(call: SkillCall) -> SkillPolicy:
    raise AssertionError(f"unreachable: calls without a learned policy run the scripted expert ({call})")


class LearnedPrefixRunner:
    """Runs one prefix skill with the shipped learned policy for it (the scripted expert where there is none).

    Args:
        policy_dir: folder of shipped policy cards (their observation set must be the env's).
    """

    def __init__(self, policy_dir: str | Path | None = None) -> None:
        self.provider = LearnedSkillProvider(fallback=_no_fallback, mode="learned",
                                             policy_dir=policy_dir or DEFAULT_DIR)
        self.calls: dict[str, list[int]] = {}
        """Per policy name ("ppo:pick", "scripted"): [successes, calls], for reports."""

    def __call__(self, env: Any, spec: TaskSpec) -> tuple[bool, int]:
        """Run `spec` from the scene as it is; returns (success, control steps)."""
        call = call_for_task(spec)
        policy = self.provider.learned_policy(call)
        if policy is None:
            ok, steps = run_skill(env, spec)
            self._count("scripted", ok)
            return ok, steps
        env.set_task(spec.name, spec.args, instruction=call.text)
        obs = env.observation()
        info: dict[str, Any] = {"instruction": call.text, "task": str(spec)}
        policy.reset(call)
        steps, ok = 0, False
        while True:
            obs, _, terminated, truncated, info = env.step(policy.act(obs, info))
            steps += 1
            if terminated or truncated:
                ok = bool(terminated)
                break
        self._count(policy.name, ok)
        return ok, steps

    def _count(self, name: str, ok: bool) -> None:
        row = self.calls.setdefault(name, [0, 0])
        row[0] += ok
        row[1] += 1
