"""The multimodal extractor and the goal wrapper, on synthetic spaces shaped like the env contract."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from perception import GoalEmbeddingWrapper, HashingTextEncoder, MultiModalExtractor, policy_kwargs, read_layout
from perception.checkpoint import save_checkpoint

GOAL_DIM = 384


def contract_space(mode: str, image_size: int = 32, goal: bool = True, channels_first: bool = False) -> spaces.Dict:
    """An observation space laid out like docs/ENV_CONTRACT.md for `mode`."""
    keys: dict[str, spaces.Space] = {"proprio": spaces.Box(-np.inf, np.inf, (21,), np.float32)}
    if mode == "state":
        keys["objects"] = spaces.Box(-np.inf, np.inf, (8 * 7,), np.float32)
    cameras = {"state": [], "rgbd": ["front"], "rgbd_touch": ["front", "wrist"]}[mode]
    for camera in cameras:
        rgb_shape = (3, image_size, image_size) if channels_first else (image_size, image_size, 3)
        keys[f"rgb_{camera}"] = spaces.Box(0, 255, rgb_shape, np.uint8)
        keys[f"depth_{camera}"] = spaces.Box(0.0, 3.0, (image_size, image_size, 1), np.float32)
    if mode == "rgbd_touch":
        keys["touch"] = spaces.Box(0.0, np.inf, (38,), np.float32)
    if goal:
        keys["goal"] = spaces.Box(-1.0, 1.0, (GOAL_DIM,), np.float32)
    return spaces.Dict(keys)


def sample_batch(space: spaces.Dict, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    out = {}
    for key, sub in space.spaces.items():
        if sub.dtype == np.uint8:
            out[key] = torch.as_tensor(rng.integers(0, 256, (batch, *sub.shape), dtype=np.uint8))
        else:
            out[key] = torch.as_tensor(rng.uniform(0.0, 2.0, (batch, *sub.shape)).astype(np.float32))
    return out


MODES = ["state", "rgbd", "rgbd_touch"]
FUSIONS = ["concat", "attention"]


def test_layout_reads_keys_by_convention() -> None:
    layout = read_layout(contract_space("rgbd_touch"))
    assert [camera.name for camera in layout.cameras] == ["front", "wrist"]
    assert all(camera.channels == 4 for camera in layout.cameras)
    assert layout.touch == ("touch", 38)
    assert layout.vectors == (("proprio", 21),)
    assert layout.goal == ("goal", GOAL_DIM)
    assert layout.token_names == ("camera_front", "camera_wrist", "touch", "vector_proprio", "goal")


def test_layout_handles_channel_first_images_and_rejects_bad_ones() -> None:
    camera = read_layout(contract_space("rgbd", channels_first=True)).cameras[0]
    assert camera.rgb.channels_first and not camera.depth.channels_first
    bad = spaces.Dict({"rgb_front": spaces.Box(0, 255, (32, 32, 5), np.uint8)})
    with pytest.raises(ValueError, match="expected 3 channels"):
        read_layout(bad)
    with pytest.raises(TypeError, match=r"spaces\.Dict"):
        read_layout(spaces.Box(0, 1, (3,)))
    with pytest.raises(TypeError, match=r"spaces\.Box"):
        read_layout(spaces.Dict({"x": spaces.Discrete(3)}))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fusion", FUSIONS)
def test_features_have_declared_shape_and_dtype(mode: str, fusion: str) -> None:
    space = contract_space(mode)
    extractor = MultiModalExtractor(space, token_dim=32, fusion=fusion)
    features = extractor(sample_batch(space, 5))
    assert features.shape == (5, extractor.features_dim)
    assert features.dtype == torch.float32
    assert torch.isfinite(features).all()
    n_tokens = len(read_layout(space).token_names)
    assert extractor.features_dim == (n_tokens * 32 if fusion == "concat" else 64)


def test_both_image_layouts_give_the_same_features() -> None:
    last, first = contract_space("rgbd"), contract_space("rgbd", channels_first=True)
    torch.manual_seed(0)
    a = MultiModalExtractor(last, token_dim=32)
    torch.manual_seed(0)
    b = MultiModalExtractor(first, token_dim=32)
    batch = sample_batch(last, 3)
    transposed = {**batch, "rgb_front": batch["rgb_front"].permute(0, 3, 1, 2)}
    torch.testing.assert_close(a(batch), b(transposed))


@pytest.mark.parametrize("fusion", FUSIONS)
def test_same_seed_same_features_other_seed_differs(fusion: str) -> None:
    space = contract_space("rgbd_touch")
    batch = sample_batch(space, 4)
    outputs = []
    for seed in (7, 7, 8):
        torch.manual_seed(seed)
        outputs.append(MultiModalExtractor(space, token_dim=32, fusion=fusion)(batch))
    assert torch.equal(outputs[0], outputs[1])
    assert not torch.allclose(outputs[0], outputs[2])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fusion", FUSIONS)
def test_gradients_reach_every_encoder(mode: str, fusion: str) -> None:
    space = contract_space(mode)
    torch.manual_seed(0)
    extractor = MultiModalExtractor(space, token_dim=32, fusion=fusion)
    extractor(sample_batch(space, 6)).square().sum().backward()
    for name, encoder in extractor.encoders.items():
        grads = [p.grad for p in encoder.parameters()]
        assert all(g is not None for g in grads), f"{name} has parameters without gradient"
        assert sum(float(g.abs().sum()) for g in grads) > 0, f"no gradient reached {name}"


def test_attention_output_depends_on_the_goal() -> None:
    space = contract_space("rgbd")
    torch.manual_seed(0)
    extractor = MultiModalExtractor(space, token_dim=32, fusion="attention")
    batch = sample_batch(space, 2)
    other = {**batch, "goal": -batch["goal"]}
    assert not torch.allclose(extractor(batch), extractor(other))


def test_unknown_fusion_and_bad_heads_are_rejected() -> None:
    with pytest.raises(ValueError, match="concat, attention"):
        MultiModalExtractor(contract_space("state"), fusion="sum")
    with pytest.raises(ValueError, match="divisible"):
        MultiModalExtractor(contract_space("state"), token_dim=30, fusion="attention")


def test_image_size_decides_cnn_depth() -> None:
    small = MultiModalExtractor(contract_space("rgbd", image_size=64), token_dim=16).encoders["camera_front"]
    large = MultiModalExtractor(contract_space("rgbd", image_size=128), token_dim=16).encoders["camera_front"]
    convs = [sum(isinstance(m, torch.nn.Conv2d) for m in e.cnn) for e in (small, large)]
    assert convs == [3, 4]


def test_pretrained_weights_load_by_name_and_check_shapes(tmp_path) -> None:
    space = contract_space("rgbd_touch")
    torch.manual_seed(1)
    source = MultiModalExtractor(space, token_dim=32)
    path = save_checkpoint(
        tmp_path / "p.pt", {"encoders": {k: source.encoders[k].state_dict() for k in ("camera_front", "touch")}}
    )
    torch.manual_seed(2)
    target = MultiModalExtractor(space, token_dim=32, fusion="attention", pretrained=path, freeze_pretrained=True)
    assert target.pretrained_loaded == ["camera_front", "touch"]
    for key in ("camera_front", "touch"):
        for a, b in zip(source.encoders[key].parameters(), target.encoders[key].parameters(), strict=True):
            assert torch.equal(a, b) and not b.requires_grad
    assert target.encoders["camera_wrist"].cnn[0].weight.requires_grad
    with pytest.raises(ValueError, match="different image size"):
        MultiModalExtractor(contract_space("rgbd_touch", image_size=64), token_dim=32, pretrained=path)
    with pytest.raises(ValueError, match="none match"):
        MultiModalExtractor(contract_space("state"), token_dim=32, pretrained=path)
    (tmp_path / "junk.pt").write_bytes(b"")
    with pytest.raises((ValueError, EOFError, RuntimeError)):
        MultiModalExtractor(space, pretrained=tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError):
        MultiModalExtractor(space, pretrained=tmp_path / "missing.pt")


class FakeKitchen(gym.Env):
    """A stand-in env with the contract's observation keys; the instruction changes mid-episode."""

    def __init__(self, mode: str = "rgbd_touch", image_size: int = 32, switch_at: int = 3) -> None:
        self.observation_space = contract_space(mode, image_size, goal=False)
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.switch_at = switch_at
        self.t = 0
        self.instruction = ""
        self.switched_to: str | None = None

    def _obs(self) -> dict[str, np.ndarray]:
        return {k: s.sample() for k, s in self.observation_space.spaces.items()}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.observation_space.seed(seed)
        self.t = 0
        self.instruction = f"pick up the red block {int(self.np_random.integers(3))}"
        return self._obs(), {"instruction": self.instruction}

    def set_task(self, name: str, args=None) -> str:
        self.instruction = f"{name} {' '.join(args or [])}"
        return self.instruction

    def step(self, action):
        self.t += 1
        if self.t == self.switch_at:
            self.instruction = "open the drawer"
        reward = float(-np.abs(action).sum())
        return self._obs(), reward, False, self.t >= 8, {"instruction": self.instruction}


def test_goal_wrapper_adds_cached_embedding_and_follows_instruction_changes() -> None:
    encoder = HashingTextEncoder()
    env = GoalEmbeddingWrapper(FakeKitchen(), encoder)
    assert env.observation_space["goal"].shape == (GOAL_DIM,)
    assert "rgb_front" in env.observation_space.spaces
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    np.testing.assert_allclose(obs["goal"], encoder.encode([info["instruction"]])[0])
    first = obs["goal"]
    for _ in range(3):
        obs, *_ = env.step(env.action_space.sample())
    np.testing.assert_allclose(obs["goal"], encoder.encode(["open the drawer"])[0])
    assert not np.allclose(obs["goal"], first)
    assert env.set_task("close", ["drawer"]) == "close drawer"
    obs, *_ = env.step(env.action_space.sample())
    np.testing.assert_allclose(obs["goal"], encoder.encode(["close drawer"])[0])
    assert set(env._cache) >= {info["instruction"], "open the drawer", "close drawer"}


def test_goal_wrapper_rejects_bad_envs() -> None:
    wrapped = GoalEmbeddingWrapper(FakeKitchen(), HashingTextEncoder())
    with pytest.raises(ValueError, match="already has"):
        GoalEmbeddingWrapper(wrapped, HashingTextEncoder())
    with pytest.raises(TypeError, match="Dict"):
        GoalEmbeddingWrapper(gym.make("CartPole-v1"), HashingTextEncoder())


@pytest.mark.parametrize("fusion", FUSIONS)
def test_short_ppo_learn_with_the_extractor(fusion: str) -> None:
    from stable_baselines3 import PPO

    env = GoalEmbeddingWrapper(FakeKitchen(), HashingTextEncoder())
    model = PPO(
        "MultiInputPolicy",
        env,
        n_steps=16,
        batch_size=8,
        n_epochs=1,
        seed=0,
        device="cpu",
        policy_kwargs=policy_kwargs(token_dim=16, fusion=fusion, cnn_width=8),
    )
    # SB3 wrapped the env in VecTransposeImage: the policy sees channel-first colour images.
    camera = model.policy.features_extractor.layout.cameras[0]
    assert camera.rgb.channels_first and not camera.depth.channels_first
    before = [p.detach().clone() for p in model.policy.features_extractor.encoders.parameters()]
    model.learn(total_timesteps=32)
    after = list(model.policy.features_extractor.encoders.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True)), "PPO did not update perception"
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (4,)
