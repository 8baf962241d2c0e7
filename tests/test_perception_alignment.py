"""Contrastive grounding on a small synthetic world whose pictures and touch really depend on the facts.

A trained model must beat chance by a wide margin; an untrained one and a model trained on shuffled
labels must not, so the assertions fail for a broken encoder, loss or metric.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from perception import HashingTextEncoder, MultiModalExtractor
from perception.alignment import AlignmentConfig, AlignmentModel, multi_positive_infonce, random_shift
from perception.alignment_training import (
    evaluate_alignment,
    grasp_accuracy,
    load_alignment,
    retrieval_accuracy,
    save_alignment,
    train_alignment,
)
from perception.frames import FrameSet
from perception.statements import TOUCH_STATEMENTS, candidate_sets, fact_text, is_grasping, subject, vocabulary

SIZE = 16
BLOCKS = {"red_block": (255, 0, 0), "blue_block": (0, 0, 255), "green_block": (0, 255, 0)}
PLACES = {"table": (2, 2), "bowl": (2, 10), "plate": (10, 2), "drawer": (10, 10)}


def synthetic_space() -> spaces.Dict:
    return spaces.Dict(
        {
            "rgb_front": spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8),
            "depth_front": spaces.Box(0.0, 2.0, (SIZE, SIZE, 1), np.float32),
            "touch": spaces.Box(0.0, np.inf, (38,), np.float32),
        }
    )


def synthetic_frames(n: int, seed: int) -> FrameSet:
    """Each block sits in a place (its colour painted in that place's quadrant) or in the gripper."""
    rng = np.random.default_rng(seed)
    rgb = np.zeros((n, SIZE, SIZE, 3), np.uint8)
    depth = np.full((n, SIZE, SIZE, 1), 1.5, np.float32)
    touch = np.zeros((n, 38), np.float32)
    facts = []
    for i in range(n):
        held = rng.choice([None, *BLOCKS]) if rng.random() < 0.4 else None
        frame = [("holding", held)] if held else [("gripper_empty",)]
        for offset, (block, colour) in enumerate(BLOCKS.items()):
            if block == held:
                rgb[i, 6:10, 6:10] = colour
                continue
            place = str(rng.choice(list(PLACES)))
            y, x = PLACES[place]
            rgb[i, y + offset : y + offset + 2, x : x + 4] = colour
            depth[i, y : y + 4, x : x + 4] = 1.0
            frame.append(("on" if place in ("table", "plate") else "in", block, place))
        opened = rng.random() < 0.5
        frame.append(("open" if opened else "closed", "drawer"))
        rgb[i, 15, :] = 200 if opened else 30
        if held:
            touch[i, :32] = rng.uniform(0.5, 3.0, 32) * (rng.random(32) < 0.6)
            touch[i, 32:36] = rng.uniform(2.0, 8.0, 4)
            touch[i, 36:] = 1.0
        else:
            touch[i, :32] = rng.uniform(0.0, 0.05, 32)
        facts.append(frame)
    obs = {"rgb_front": rgb, "depth_front": depth, "touch": touch}
    return FrameSet(obs, facts, np.repeat(np.arange(n // 10 + 1), 10)[:n] + seed * 1000)


FAST = AlignmentConfig(token_dim=32, cnn_width=8, epochs=12, batch_size=32, lr=3e-3, shift=0)


def test_statements_and_vocabulary() -> None:
    assert fact_text(["in", "red_block", "bowl"]) == "the red block is in the bowl"
    assert fact_text(["holding", "mug"]) == "the gripper is holding the mug"
    assert fact_text(["gripper_empty"]) == "the gripper is empty"
    assert fact_text(["closed", "drawer"]) == "the drawer is closed"
    assert fact_text(["near", "mug", "bowl"]) == "near mug bowl"
    with pytest.raises(ValueError, match="non-empty list of strings"):
        fact_text("in red_block bowl")
    vocab = vocabulary([[("in", "red_block", "bowl"), ("on", "mug", "table"), ("holding", "mug"), ("open", "drawer")]])
    assert ("on", "red_block", "table") in vocab and ("in", "mug", "bowl") in vocab
    assert ("closed", "drawer") in vocab and ("gripper_empty",) in vocab
    assert ("holding", "red_block") not in vocab  # never seen held
    sets = candidate_sets([("in", "red_block", "bowl")], vocab, 4, np.random.default_rng(0))
    ((truth, distractors),) = sets
    assert truth not in distractors and len(distractors) == 3
    assert subject(distractors[0]) == "red_block"


def test_infonce_prefers_true_statements() -> None:
    positive = torch.tensor([[True, False, False], [False, True, True]])
    right = torch.tensor([[5.0, -5.0, -5.0], [-5.0, 5.0, 5.0]])
    assert multi_positive_infonce(right, positive) < 0.01 < multi_positive_infonce(-right, positive)


def test_random_shift_moves_rgb_and_depth_together() -> None:
    model = AlignmentModel(synthetic_space(), 384, FAST)
    frames = synthetic_frames(4, 0)
    obs = {k: torch.as_tensor(v) for k, v in frames.obs.items()}
    obs["depth_front"] = obs["rgb_front"][..., :1].float()
    shifted = random_shift(obs, model, 3, torch.Generator().manual_seed(0))
    torch.testing.assert_close(shifted["depth_front"], shifted["rgb_front"][..., :1])
    assert shifted["rgb_front"].shape == obs["rgb_front"].shape
    assert not torch.equal(shifted["rgb_front"], obs["rgb_front"].float())


def test_metrics_score_a_perfect_and_a_useless_model() -> None:
    frames = synthetic_frames(60, 3)
    vocab = vocabulary(frames.facts)
    from perception.alignment import truth_matrix

    truth = truth_matrix(frames.facts, vocab).astype(float)
    assert retrieval_accuracy(truth, frames.facts, vocab, 0, hard=True)["top1"] == 1.0
    constant = retrieval_accuracy(np.zeros_like(truth), frames.facts, vocab, 0, hard=True)["top1"]
    assert constant < 0.3
    text = np.eye(2, 4, dtype=np.float32)
    touch = np.where(frames.grasped[:, None], text[0], text[1])
    assert grasp_accuracy(touch, text, frames.grasped)["accuracy"] == 1.0
    assert grasp_accuracy(touch, text[::-1], frames.grasped)["accuracy"] == 0.0


@pytest.fixture(scope="module")
def trained():
    text = HashingTextEncoder()
    train = synthetic_frames(200, seed=1)
    model, history, vocab = train_alignment(train, synthetic_space(), text, FAST, seed=0)
    return text, train, model, history, vocab


def test_training_beats_chance_on_held_out_frames(trained) -> None:
    text, train, model, history, vocab = trained
    test = synthetic_frames(150, seed=2)
    metrics = evaluate_alignment(model, test, text, vocab, prior_facts=train.facts)
    assert history[-1] < history[0]
    assert metrics["retrieval_hard"]["top1"] > 0.55, metrics["retrieval_hard"]
    assert metrics["retrieval_uniform"]["top1"] > 0.55, metrics["retrieval_uniform"]
    assert metrics["grasp"]["accuracy"] > 0.9, metrics["grasp"]
    assert metrics["retrieval_hard"]["top1"] > metrics["prior_retrieval_hard"]["top1"] + 0.2

    torch.manual_seed(5)
    untrained = evaluate_alignment(AlignmentModel(synthetic_space(), text.dim, FAST).eval(), test, text, vocab)
    assert untrained["retrieval_hard"]["top1"] < 0.4, untrained["retrieval_hard"]


@pytest.mark.slow
def test_shuffled_labels_stay_near_chance() -> None:
    text = HashingTextEncoder()
    train, test = synthetic_frames(300, seed=1), synthetic_frames(150, seed=2)
    order = np.random.default_rng(0).permutation(len(train))
    shuffled = FrameSet(train.obs, [train.facts[i] for i in order], train.episode)
    model, _, vocab = train_alignment(shuffled, synthetic_space(), text, FAST, seed=0)
    metrics = evaluate_alignment(model, test, text, vocab, prior_facts=shuffled.facts)
    # Without real image-text pairing the model can learn at most the prior; it must not beat it clearly.
    assert metrics["retrieval_hard"]["top1"] < metrics["prior_retrieval_hard"]["top1"] + 0.1
    assert metrics["grasp"]["accuracy"] < 0.8


def test_checkpoint_round_trip_and_extractor_start(trained, tmp_path) -> None:
    text, train, model, _, vocab = trained
    path = save_alignment(tmp_path / "perception.pt", model, synthetic_space(), vocab)
    again, _space, vocab_again = load_alignment(path, text.dim)
    assert vocab_again == vocab
    sample = train.subset(range(8))
    obs = {k: torch.as_tensor(v) for k, v in sample.obs.items()}
    with torch.no_grad():
        torch.testing.assert_close(again.embed_vision(obs), model.embed_vision(obs))
    policy_space = spaces.Dict({**synthetic_space().spaces, "goal": spaces.Box(-1, 1, (384,), np.float32)})
    extractor = MultiModalExtractor(policy_space, token_dim=32, cnn_width=8, pretrained=path)
    assert extractor.pretrained_loaded == ["camera_front", "touch"]
    torch.testing.assert_close(extractor.encoders["touch"](obs), model.encoders["touch"](obs))


def test_frame_set_save_load_and_validation(tmp_path) -> None:
    frames = synthetic_frames(12, 0)
    again = FrameSet.load(frames.save(tmp_path / "f.npz"))
    assert again.facts == frames.facts and np.array_equal(again.obs["touch"], frames.obs["touch"])
    assert list(again.grasped) == [is_grasping(f) for f in frames.facts]
    both = FrameSet.concat([frames, frames.subset([0, 1])])
    assert len(both) == 14
    with pytest.raises(ValueError, match="ragged"):
        FrameSet(frames.obs, frames.facts[:3], frames.episode[:3])
    assert TOUCH_STATEMENTS[0] != TOUCH_STATEMENTS[1]


def test_training_is_deterministic_under_a_seed() -> None:
    text, frames = HashingTextEncoder(), synthetic_frames(64, seed=4)
    config = AlignmentConfig(token_dim=16, cnn_width=4, epochs=2, batch_size=16, shift=2)
    runs = [train_alignment(frames, synthetic_space(), text, config, seed=s)[1] for s in (3, 3, 4)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
