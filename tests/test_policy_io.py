"""Pickle-free policy files (agent/policy_io.py): shipped policies load safely and act as before the conversion."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from agent.policy import DEFAULT_DIR, find_cards, load_sb3_policy
from agent.policy_io import UnsafePolicyFileError, architecture, load_policy, read_architecture, save_policy

REFERENCE = Path(__file__).parent / "data" / "policy_reference_actions.npz"
CONVERTED_DIR = Path(__file__).parent / "data" / "converted"
"""The reset-trained reach converted from its SB3 pickle, kept here once a DAgger student replaced it in
agent/skill_policies: the one converted policy left to hold the conversion to its recorded actions."""
CONVERTED_RUNS = {"reach": "reach_state_s0_bc", "pick": "pick_state_s0_bc", "open": "open_state_s0_bc",
                  "push": "push_state_s2_bc"}
"""The training runs of the four policies converted from SB3 pickles (their cards' `run`)."""


class _Payload:
    """Unpickling this runs `Path.touch(marker)`: what a crafted policy file would do, harmlessly."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _plant(path: Path, marker: Path, kind: str) -> Path:
    if kind == "torch":
        torch.save({"state_dict": {}, "data": _Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(_Payload(marker)))
    return path


@pytest.mark.parametrize("kind", ["torch", "raw"])
def test_agent_loader_refuses_a_planted_pickle_without_running_it(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "pwned"
    for name in ("policy.pt", "policy.safetensors"):
        path = _plant(tmp_path / name, marker, kind)
        with pytest.raises(UnsafePolicyFileError, match="pickle-based torch/SB3 file"):
            load_sb3_policy(path)
    assert not marker.exists()


def test_eval_run_refuses_a_planted_pickle_with_exit_2(tmp_path: Path, capsys) -> None:
    from experiments.cli import main
    from experiments.training.config import TrainConfig

    run = tmp_path / "runs" / "evil"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(TrainConfig(encoder="hashing").to_yaml())
    marker = tmp_path / "pwned"
    _plant(run / "policy.safetensors", marker, "torch")
    code = main(["eval", "--run", "evil", "--runs-dir", str(tmp_path / "runs"), "--episodes", "1", "--videos", "0",
                 "--quiet"])
    assert code == 2 and not marker.exists()
    assert "pickle-based torch/SB3 file" in capsys.readouterr().err


def test_every_shipped_policy_loads_safely_and_acts_as_before_the_conversion() -> None:
    """Reference actions were recorded from the SB3 pickles before they were converted (and deleted).

    Equal to float rounding, not bit for bit: the same weights and inputs give outputs 1e-7 apart on another CPU
    (seen on one whose torch picks other matmul kernels), while a wrong or reordered weight moves them by far more.
    """
    # A converted policy is checked where it is shipped or kept; one replaced and not kept has no reference left.
    cards = {}
    for folder in (CONVERTED_DIR, DEFAULT_DIR):
        cards.update({t: c for t, c in find_cards(folder).items()
                      if t in CONVERTED_RUNS and c.meta.get("run") == CONVERTED_RUNS[t]})
    reference = np.load(REFERENCE)
    checked = sorted(cards)
    assert "reach" in checked
    for task in checked:
        card = cards[task]
        assert card.path.suffix == ".safetensors" and card.path.stat().st_size < 5_000_000
        assert card.meta["architecture"] == read_architecture(card.path)
        policy = load_sb3_policy(card.path)
        obs = {key: reference[f"{task}/{key}"] for key in ("proprio", "objects", "goal")}
        actions, _ = policy.predict(obs, deterministic=True)
        tensor, _ = policy.obs_to_tensor(obs)
        with torch.no_grad():
            mean = policy.get_distribution(tensor).distribution.mean.numpy()
            values = policy.predict_values(tensor).numpy().reshape(-1)
        for got, key in ((actions, "action"), (mean, "mean"), (values, "value")):
            np.testing.assert_allclose(got, reference[f"{task}/{key}"], rtol=1e-5, atol=1e-5, err_msg=task)


def test_a_saved_policy_round_trips_with_its_architecture(tmp_path: Path) -> None:
    cards = find_cards(DEFAULT_DIR)
    policy = load_sb3_policy(cards["reach"].path)
    with torch.no_grad():
        policy.log_std.fill_(-0.25)
    path = save_policy(policy, tmp_path / "p.safetensors")
    again = load_policy(path)
    assert json.dumps(architecture(again)) == json.dumps(architecture(policy))
    for (name, a), (_, b) in zip(policy.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_a_damaged_or_foreign_safetensors_file_is_a_clear_error(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ValueError, match=r"has no 'embodia\.architecture' metadata"):
        load_policy(tmp_path / "foreign.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ValueError, match="is not a safetensors policy file"):
        load_policy(tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError, match="no policy file"):
        load_policy(tmp_path / "missing.safetensors")


def test_a_student_with_neighbour_tokens_round_trips_and_sees_an_unnamed_object_move(tmp_path: Path) -> None:
    """The neighbour token pools what stands near the attended object; without the key, architectures are unchanged."""
    from gymnasium import spaces
    from stable_baselines3.common.policies import MultiInputActorCriticPolicy

    from agent.policy_features import OBJECT_FEATURES, standardized_policy_kwargs

    obs_space = spaces.Dict({"goal": spaces.Box(-1.0, 1.0, (16,), np.float32),
                             "objects": spaces.Box(-np.inf, np.inf, (60,), np.float32),
                             "proprio": spaces.Box(-np.inf, np.inf, (21,), np.float32)})
    action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)

    def student(**extra) -> MultiInputActorCriticPolicy:
        torch.manual_seed(0)
        kwargs = standardized_policy_kwargs(token_dim=16, fusion="concat", cnn_width=8, object_heads=2, **extra)
        return MultiInputActorCriticPolicy(obs_space, action_space, lambda _: 1e-3, net_arch=[32], **kwargs)

    plain, near = student(), student(neighbour_tokens=True)
    assert "neighbour_tokens" not in architecture(plain)["features_extractor_kwargs"]
    assert architecture(near)["features_extractor_kwargs"]["neighbour_tokens"] is True
    again = load_policy(save_policy(near, tmp_path / "near.safetensors"))
    assert json.dumps(architecture(again)) == json.dumps(architecture(near))
    rng = np.random.default_rng(0)
    obs = {key: torch.as_tensor(rng.normal(size=(1, *space.shape)), dtype=torch.float32)
           for key, space in obs_space.spaces.items()}
    with torch.no_grad():
        tokens = near.features_extractor.object_attention(obs["objects"], obs["goal"])
        assert tokens.shape == (1, 4, 16)  # two attended objects, two neighbourhoods
        weights, _, _ = near.features_extractor.object_attention.weights(obs["objects"], obs["goal"])
        unattended = int(weights[0].sum(dim=0).argmin())  # the object the heads attend to least
        moved = obs["objects"].clone()
        moved[0, unattended * OBJECT_FEATURES] += 0.5
        changed = near.features_extractor.object_attention(moved, obs["goal"])
        assert float((changed[0, 2:] - tokens[0, 2:]).abs().max()) > 1e-4  # the neighbour tokens see it
        np.testing.assert_allclose(again.predict_values(obs).numpy(), near.predict_values(obs).numpy(), atol=1e-6)
