"""`embodia bench perception`: how fast observations and instructions become embeddings.

Measured side by side in one run:

* observations embedded per second by `MultiModalExtractor` (both fusion modes) at batch 1 and 64, for
  the env's `state`, `rgbd` 64x64 and `rgbd_touch` 128x128 observation spaces (plus the goal key);
* MiniLM sentences per second, cold (cache cleared) and cached, and its load time;
* the share of a PPO update (`model.train()`) spent inside perception, measured in place: forward by
  module hooks, backward from the moment the gradient reaches the extractor's output until the last
  extractor parameter has received its gradient (the extractor is the first layer, so that span is
  exactly its backward pass).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

SPACES = (("state", 64), ("rgbd", 64), ("rgbd_touch", 128))
FUSIONS = ("concat", "attention")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `embodia bench perception`."""
    parser.add_argument("--min-seconds", type=float, default=1.0, help="time each measurement at least this long")
    parser.add_argument("--sentences", type=int, default=256, help="distinct sentences for the MiniLM measurement")
    parser.add_argument("--ppo-steps", type=int, default=256, help="rollout length of the PPO update measured")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default 0: torch's own choice)")
    parser.add_argument("--ppo-modes", default="state,rgbd", help="observation modes for the PPO share (comma list)")


def _observation_space(mode: str, size: int, goal_dim: int) -> Any:
    from gymnasium import spaces

    from envs.household import HouseholdEnv

    env = HouseholdEnv(obs_mode=mode, image_size=size)
    try:
        keys = dict(env.observation_space.spaces)
    finally:
        env.close()
    keys["goal"] = spaces.Box(-1.0, 1.0, (goal_dim,), np.float32)
    return spaces.Dict(keys)


def _random_batch(space: Any, batch: int, rng: np.random.Generator) -> dict[str, Any]:
    import torch

    out = {}
    for key, sub in space.spaces.items():
        if sub.dtype == np.uint8:
            out[key] = torch.as_tensor(rng.integers(0, 256, (batch, *sub.shape), dtype=np.uint8))
        else:
            out[key] = torch.as_tensor(rng.uniform(0.0, 1.5, (batch, *sub.shape)).astype(np.float32))
    return out


def _rate(work: Any, items: int, min_seconds: float) -> float:
    """Items per second of `work()`: items over the median call time, after a warm-up.

    The median, not the mean, because the machine is shared: a call that stalls behind another
    process says nothing about the code.
    """
    for _ in range(2):
        work()
    times: list[float] = []
    started = time.perf_counter()
    while time.perf_counter() - started < min_seconds or len(times) < 5:
        begin = time.perf_counter()
        work()
        times.append(time.perf_counter() - begin)
    return items / float(np.median(times))


def bench_extractors(min_seconds: float, goal_dim: int = 384) -> list[dict[str, Any]]:
    """Observations per second for every observation space and fusion mode, at batch 1 and 64."""
    import torch

    from perception import MultiModalExtractor

    rows, rng = [], np.random.default_rng(0)
    for mode, size in SPACES:
        space = _observation_space(mode, size, goal_dim)
        for fusion in FUSIONS:
            torch.manual_seed(0)
            extractor = MultiModalExtractor(space, fusion=fusion).eval()
            row = {
                "obs": mode if mode == "state" else f"{mode} {size}x{size}",
                "fusion": fusion,
                "params": sum(p.numel() for p in extractor.parameters()),
            }
            for batch in (1, 64):
                data = _random_batch(space, batch, rng)

                def work(data: dict[str, Any] = data, extractor: Any = extractor) -> None:
                    with torch.inference_mode():
                        extractor(data)

                row[f"obs_per_s_b{batch}"] = _rate(work, batch, min_seconds)
            rows.append(row)
    return rows


def _sentences(n: int) -> list[str]:
    from envs.instructions import sample_instruction
    from envs.tasks import TASK_NAMES, valid_arguments

    rng, out = np.random.default_rng(0), {}
    for _ in range(50 * n):
        name = TASK_NAMES[int(rng.integers(len(TASK_NAMES)))]
        options = valid_arguments(name)
        out[sample_instruction(name, options[int(rng.integers(len(options)))], rng)] = None
        if len(out) >= n:
            break
    return list(out)


def bench_minilm(n_sentences: int) -> tuple[dict[str, Any], Any]:
    """Load time and sentences per second, cold and cached, batch of all sentences and one at a time."""
    from perception import MiniLMEncoder

    started = time.perf_counter()
    encoder = MiniLMEncoder()
    load_s = time.perf_counter() - started
    sentences = _sentences(n_sentences)
    encoder.encode(sentences[:8])  # warm the kernels, then forget
    encoder.clear_cache()
    started = time.perf_counter()
    encoder.encode(sentences)
    cold = len(sentences) / (time.perf_counter() - started)
    started = time.perf_counter()
    encoder.encode(sentences)
    cached = len(sentences) / (time.perf_counter() - started)
    encoder.clear_cache()
    started = time.perf_counter()
    for sentence in sentences[:32]:
        encoder.encode([sentence])
    cold_single = 32 / (time.perf_counter() - started)
    started = time.perf_counter()
    for sentence in sentences[:32]:
        encoder.encode([sentence])
    cached_single = 32 / (time.perf_counter() - started)
    result = {
        "load_s": load_s,
        "sentences": len(sentences),
        "cold_per_s": cold,
        "cached_per_s": cached,
        "cold_single_per_s": cold_single,
        "cached_single_per_s": cached_single,
    }
    return result, encoder


class PerceptionTimer:
    """Accumulates the extractor's forward and backward time inside a PPO update, via hooks."""

    def __init__(self, extractor: Any) -> None:
        self.forward_s = self.backward_s = 0.0
        self._start = self._grad_at = self._last_grad = None
        extractor.register_forward_pre_hook(self._pre)
        extractor.register_forward_hook(self._post)
        for parameter in extractor.parameters():
            if parameter.requires_grad:
                parameter.register_post_accumulate_grad_hook(self._accumulated)

    def _pre(self, module: Any, inputs: Any) -> None:
        self.flush()
        self._start = time.perf_counter()

    def _post(self, module: Any, inputs: Any, output: Any) -> None:
        self.forward_s += time.perf_counter() - self._start
        if output.requires_grad:
            output.register_hook(self._grad_arrived)

    def _grad_arrived(self, grad: Any) -> None:
        self._grad_at = time.perf_counter()

    def _accumulated(self, parameter: Any) -> None:
        self._last_grad = time.perf_counter()

    def flush(self) -> None:
        """Book the backward span of the last pass (called before each forward and at the end)."""
        if self._grad_at is not None and self._last_grad is not None and self._last_grad >= self._grad_at:
            self.backward_s += self._last_grad - self._grad_at
        self._grad_at = self._last_grad = None

    def reset(self) -> None:
        """Book any pending backward span, then zero both totals for the next measurement."""
        self.flush()
        self.forward_s = self.backward_s = 0.0


def bench_ppo_share(mode: str, encoder: Any, n_steps: int, repeats: int = 3) -> dict[str, Any]:
    """Share of one PPO update's wall time spent in the perception extractor."""
    from stable_baselines3 import PPO

    from envs.household import HouseholdEnv
    from perception import GoalEmbeddingWrapper, policy_kwargs

    env = GoalEmbeddingWrapper(HouseholdEnv(task="pick", obs_mode=mode, image_size=64), encoder)
    model = PPO(
        "MultiInputPolicy",
        env,
        n_steps=n_steps,
        batch_size=64,
        n_epochs=4,
        seed=0,
        device="cpu",
        policy_kwargs=policy_kwargs(),
    )
    model.learn(total_timesteps=n_steps)  # one rollout + one update: fills the buffer, warms everything up
    timer = PerceptionTimer(model.policy.features_extractor)
    runs = []
    for _ in range(repeats):  # the update is repeated on the same buffer; the median run is reported
        timer.reset()
        started = time.perf_counter()
        model.train()
        total = time.perf_counter() - started
        timer.flush()
        runs.append((total, timer.forward_s, timer.backward_s))
    env.close()
    total, forward, backward = sorted(runs)[len(runs) // 2]
    return {
        "obs": mode,
        "update_s": total,
        "perception_forward_s": forward,
        "perception_backward_s": backward,
        "share": (forward + backward) / total,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run every measurement and print one table per part."""
    import torch

    if getattr(args, "threads", 0) > 0:
        torch.set_num_threads(args.threads)
    extractor_rows = bench_extractors(args.min_seconds)
    minilm, encoder = bench_minilm(args.sentences)
    ppo_rows = [bench_ppo_share(mode.strip(), encoder, args.ppo_steps) for mode in args.ppo_modes.split(",")]
    result = {"torch_threads": torch.get_num_threads(), "extractor": extractor_rows, "minilm": minilm, "ppo": ppo_rows}
    print(render(result))
    return result


def render(result: dict[str, Any]) -> str:
    """The three tables as text."""
    lines = [
        f"perception benchmark (CPU, torch threads: {result['torch_threads']})",
        "",
        f"{'observation':<22}{'fusion':<11}{'params':>10}{'obs/s b=1':>12}{'obs/s b=64':>12}",
    ]
    for row in result["extractor"]:
        lines.append(
            f"{row['obs']:<22}{row['fusion']:<11}{row['params']:>10,}"
            f"{row['obs_per_s_b1']:>12,.0f}{row['obs_per_s_b64']:>12,.0f}"
        )
    m = result["minilm"]
    lines += [
        "",
        f"MiniLM (load {m['load_s']:.1f} s, {m['sentences']} distinct sentences)",
        f"{'':<22}{'cold':>12}{'cached':>12}",
        f"{'batched sentences/s':<22}{m['cold_per_s']:>12,.0f}{m['cached_per_s']:>12,.0f}",
        f"{'one by one /s':<22}{m['cold_single_per_s']:>12,.0f}{m['cached_single_per_s']:>12,.0f}",
        "",
        f"{'PPO update (concat)':<22}{'update s':>10}{'perc fwd s':>12}{'perc bwd s':>12}{'share':>8}",
    ]
    for row in result["ppo"]:
        lines.append(
            f"{row['obs']:<22}{row['update_s']:>10.2f}{row['perception_forward_s']:>12.2f}"
            f"{row['perception_backward_s']:>12.2f}{100 * row['share']:>7.0f}%"
        )
    return "\n".join(lines)
