"""The binned action head (agent/policy_heads.py): two-hot targets, a mode that picks one side, safe round trips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces

from agent.errors import InputError
from agent.policy_heads import BinnedActorCriticPolicy, BinnedDistribution
from agent.policy_io import architecture, build_policy, load_policy, save_policy

OBS_SPACE = spaces.Dict({"goal": spaces.Box(-1.0, 1.0, (16,), np.float32),
                         "objects": spaces.Box(-np.inf, np.inf, (60,), np.float32),
                         "proprio": spaces.Box(-np.inf, np.inf, (21,), np.float32)})
ACTIONS = spaces.Box(-1.0, 1.0, (4,), np.float32)


def _policy(bins: int = 21) -> BinnedActorCriticPolicy:
    from agent.policy_features import standardized_policy_kwargs

    torch.manual_seed(0)
    kwargs = standardized_policy_kwargs(token_dim=16, fusion="concat", cnn_width=8, object_heads=2)
    return BinnedActorCriticPolicy(OBS_SPACE, ACTIONS, lambda _: 1e-3, action_bins=bins, net_arch=[32], **kwargs)


def _observations(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    return {key: torch.as_tensor(rng.normal(size=(n, *space.shape)), dtype=torch.float32)
            for key, space in OBS_SPACE.spaces.items()}


def test_two_hot_targets_keep_the_value_and_a_peaked_mode_gives_it_back() -> None:
    head = BinnedDistribution(4, 41)
    actions = torch.tensor([[0.3, -1.0, 1.0, 0.012], [-0.77, 0.0, 0.999, 2.0]])
    weights = head.two_hot(actions)
    centres = torch.linspace(-1.0, 1.0, 41)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4))
    torch.testing.assert_close((weights * centres).sum(-1), actions.clamp(-1, 1))
    head.proba_distribution(torch.log(weights + 1e-9).reshape(2, -1))
    torch.testing.assert_close(head.mode(), actions.clamp(-1, 1), atol=1e-5, rtol=0)


def test_the_mode_of_labels_on_two_sides_is_one_side_where_a_gaussian_mean_is_neither() -> None:
    """The reason for the head: 45% of labels say -1, 55% say +1; the mean (+0.1) says neither."""
    head = BinnedDistribution(1, 21)
    probs = torch.full((1, 1, 21), 1e-6)
    probs[..., 0], probs[..., 20] = 0.45, 0.55
    head.proba_distribution(torch.log(probs).reshape(1, -1))
    assert float(head.mode()) > 0.95
    sampled = torch.stack([head.sample() for _ in range(200)])
    assert set(np.round(sampled.numpy().ravel(), 4)) <= {-1.0, 1.0}
    centre_log_prob = head.log_prob(torch.tensor([[1.0]]))
    torch.testing.assert_close(centre_log_prob, torch.log(torch.tensor([0.55])), atol=1e-4, rtol=0)


def test_cloning_bimodal_labels_commits_to_a_side_where_the_gaussian_head_averages() -> None:
    """Labels -1 and +1 on the same inputs: the binned head's action is one of them, the Gaussian's their mean."""
    from stable_baselines3.common.policies import MultiInputActorCriticPolicy

    from agent.policy_features import standardized_policy_kwargs

    torch.manual_seed(0)
    gaussian = MultiInputActorCriticPolicy(OBS_SPACE, ACTIONS, lambda _: 1e-3, net_arch=[32],
                                           **standardized_policy_kwargs(token_dim=16, object_heads=2))
    obs = {k: v.repeat(64, 1) for k, v in _observations(1).items()}  # one state, labelled both ways
    labels = torch.tensor([[1.0, 0.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0]]).repeat(32, 1)
    labels[1::10, 0] = 1.0  # 60% of the labels say +1
    chosen = {}
    for name, policy in (("binned", _policy()), ("gaussian", gaussian)):
        optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
        for _ in range(150):
            _, log_prob, _ = policy.evaluate_actions(obs, labels)
            optimizer.zero_grad()
            (-log_prob.mean()).backward()
            optimizer.step()
        with torch.no_grad():
            chosen[name] = policy._predict(obs, deterministic=True)[:, 0]
    assert float(chosen["binned"].min()) > 0.8  # the more common side, not the +0.2 mean
    assert float(chosen["gaussian"].abs().max()) < 0.5  # between the sides


def test_a_binned_policy_round_trips_through_a_safetensors_file(tmp_path: Path) -> None:
    policy = _policy(bins=15)
    policy.log_std.fill_(-1.0)
    arch = architecture(policy)
    assert arch["policy"] == "BinnedActorCriticPolicy" and arch["action_bins"] == 15
    again = load_policy(save_policy(policy, tmp_path / "binned.safetensors"))
    assert isinstance(again, BinnedActorCriticPolicy)
    assert json.dumps(architecture(again)) == json.dumps(arch)
    obs = _observations(5, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(again._predict(obs, deterministic=True), policy._predict(obs, deterministic=True))
    torch.testing.assert_close(again.log_std, torch.full((4,), -1.0))


def test_a_policy_file_naming_an_unknown_class_or_no_bins_is_refused() -> None:
    arch = architecture(_policy())
    with pytest.raises(InputError, match="unknown policy class 'EvilPolicy'"):
        build_policy({**arch, "policy": "EvilPolicy"})
    with pytest.raises(InputError, match="must give action_bins"):
        build_policy({k: v for k, v in arch.items() if k != "action_bins"})
    with pytest.raises(InputError, match="at least 3 bins"):
        build_policy({**arch, "action_bins": 2})


def test_train_config_refuses_a_head_of_too_few_bins() -> None:
    from experiments.common.errors import InputError as ConfigError
    from experiments.training.config import TrainConfig, policy_class

    with pytest.raises(ConfigError, match="action_bins must be 0"):
        TrainConfig(action_bins=2)
    assert policy_class(TrainConfig(action_bins=41)) is BinnedActorCriticPolicy
    assert policy_class(TrainConfig()).__name__ == "MultiInputActorCriticPolicy"


def test_a_binned_head_refuses_an_action_space_it_does_not_cover() -> None:
    from agent.policy_features import standardized_policy_kwargs

    kwargs = standardized_policy_kwargs(token_dim=16, fusion="concat", cnn_width=8, object_heads=2)
    with pytest.raises(InputError, match=r"covers \[-1, 1\]"):
        BinnedActorCriticPolicy(OBS_SPACE, spaces.Box(-2.0, 2.0, (4,), np.float32), lambda _: 1e-3, net_arch=[32],
                                **kwargs)
