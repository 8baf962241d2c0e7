"""The names the README and docs import from a package's top level exist there, and load lazily where promised."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["agent", "causal", "memory", "perception", "agent.planner"])
def test_every_exported_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__, f"{package} exports nothing"
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
    with pytest.raises(AttributeError):
        _ = module.no_such_name


def test_exports_are_the_defining_modules_objects() -> None:
    import agent
    import causal
    from agent.loop import EmbodiedAgent
    from agent.planner.grounded import GroundedPlanner
    from causal.queries import answer_query
    from causal.spec import SCM

    assert agent.EmbodiedAgent is EmbodiedAgent and agent.GroundedPlanner is GroundedPlanner
    assert causal.SCM is SCM and causal.answer_query is answer_query


def test_importing_agent_or_causal_loads_no_heavy_module() -> None:
    code = "import agent, causal, sys; print(sorted({'torch', 'stable_baselines3'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
