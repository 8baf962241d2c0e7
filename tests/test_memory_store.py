"""The knowledge store's behaviour: revision of facts, episodes, skill statistics, causal facts, retrieval."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from memory import (
    EmbeddingIndex,
    EpisodeRecord,
    KnowledgeStore,
    Provenance,
    StepOutcome,
    Triple,
    triples_from_scene_facts,
)
from perception.text import HashingTextEncoder


class FakeClock:
    """Deterministic time: every call advances one second."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> KnowledgeStore:
    with KnowledgeStore(tmp_path / "m.sqlite", encoder=HashingTextEncoder(dim=128), clock=FakeClock()) as opened:
        yield opened


def hide_block_episode() -> EpisodeRecord:
    plan = {"goal": [{"predicate": "in", "args": ["yellow_block", "drawer"]}],
            "plan": [{"skill": "open", "args": ["drawer"]}, {"skill": "pick", "args": ["yellow_block"]},
                     {"skill": "place", "args": ["drawer"]}]}
    steps = [StepOutcome("open", ("drawer",), True, 40), StepOutcome("pick", ("yellow_block",), True, 55),
             StepOutcome("place", ("drawer",), True, 30)]
    final = triples_from_scene_facts([["in", "yellow_block", "drawer"], ["open", "drawer"], ["gripper_empty"]])
    return EpisodeRecord("hide the yellow block in the drawer", plan, steps, final, metadata={"seed": 3})


def test_functional_relation_replaces_old_value_and_keeps_history(store: KnowledgeStore) -> None:
    store.add_facts([("red_block", "on", "table"), ("red_block", "color", "red")], source="episode:e1")
    store.add_facts([("red_block", "in", "drawer")], source="episode:e2")
    assert store.object_locations() == {"red_block": "drawer"}
    current = store.facts_about("red_block")
    assert {f.triple for f in current} == {("red_block", "in", "drawer"), ("red_block", "color", "red")}
    history = [f for f in store.facts_about("red_block", include_history=True) if not f.active]
    assert [f.triple for f in history] == [("red_block", "on", "table")]
    newest = next(f for f in current if f.relation == "in")
    assert history[0].superseded_by == newest.id
    assert newest.source == Provenance("episode", "e2")


def test_stale_observation_does_not_override_a_newer_one(store: KnowledgeStore) -> None:
    store.add_facts([("mug", "on", "plate")], observed_at=500.0)
    store.add_facts([("mug", "on", "table")], observed_at=400.0)  # older news arriving late
    assert store.object_locations() == {"mug": "plate"}
    stale = [f for f in store.facts_about("mug", include_history=True) if f.object == "table"]
    assert len(stale) == 1 and not stale[0].active


def test_repeated_observation_merges_and_raises_confidence(store: KnowledgeStore) -> None:
    first = store.add_fact("bowl", "color", "white", confidence=0.6)
    second = store.add_fact("bowl", "color", "white", confidence=0.6)
    assert first == second
    (fact,) = store.facts_about("bowl")
    assert fact.evidence == 2
    assert fact.confidence == pytest.approx(0.84)


def test_non_functional_relations_hold_many_values(store: KnowledgeStore) -> None:
    store.add_facts([("red_block", "near", "bowl"), ("red_block", "near", "mug")])
    assert {f.object for f in store.facts_about("red_block")} == {"bowl", "mug"}


def test_custom_functional_slots(tmp_path: Path) -> None:
    with KnowledgeStore(tmp_path / "s.sqlite", functional_slots={"owner": "owner"}) as custom:
        custom.add_facts([("mug", "owner", "ann"), ("mug", "on", "table"), ("mug", "on", "plate")])
        custom.add_facts([("mug", "owner", "bob")])
        assert {f.object for f in custom.facts_about("mug")} == {"bob", "table", "plate"}
        assert custom.object_locations() == {}  # no location slot configured


@pytest.mark.parametrize("bad", [("a", "b"), ("a", "", "c"), ("a", "b", "c", 1.5), "abc", ("a", "b", 3)])
def test_bad_facts_are_rejected_and_nothing_is_written(store: KnowledgeStore, bad: object) -> None:
    with pytest.raises(ValueError, match="fact"):
        store.add_facts([("ok", "is", "fine"), bad])
    assert store.counts()["facts"] == 0


def test_bad_provenance_is_rejected(store: KnowledgeStore) -> None:
    with pytest.raises(ValueError, match="provenance kind must be one of episode, study, user"):
        store.add_fact("a", "b", "c", source="robot:7")


def test_episode_writes_facts_and_skill_outcomes_in_one_go(store: KnowledgeStore) -> None:
    episode_id = store.add_episode(hide_block_episode())
    (episode,) = store.episodes()
    assert episode.id == episode_id and episode.success and episode.metadata == {"seed": 3}
    assert [s.skill for s in episode.steps] == ["open", "pick", "place"]
    assert store.object_locations()["yellow_block"] == "drawer"
    assert ("drawer", "state", "open") in {f.triple for f in store.facts_about("drawer")}
    located = next(f for f in store.facts_about("yellow_block"))
    assert located.source == Provenance("episode", episode.uid)
    assert store.skill_stats("pick", ["yellow_block"]).attempts == 1
    with pytest.raises(ValueError, match="already stored"):
        store.add_episode(EpisodeRecord("again", uid=episode.uid))


def test_remembered_location_survives_into_a_later_session(tmp_path: Path) -> None:
    """Planner feed (1): "take the block you hid in the drawer" in a later episode."""
    path = tmp_path / "m.sqlite"
    with KnowledgeStore(path, encoder=HashingTextEncoder(dim=128)) as first_session:
        first_session.add_episode(hide_block_episode())
    with KnowledgeStore(path, encoder=HashingTextEncoder(dim=128)) as later:
        assert later.object_locations()["yellow_block"] == "drawer"
        found = later.retrieve("take the block you hid in the drawer and put it in the bowl", k=3)
        assert found.episodes[0].item.instruction == "hide the yellow block in the drawer"
        assert ("yellow_block", "in", "drawer") in {h.item.triple for h in found.facts}


def test_skill_statistics_follow_outcomes(store: KnowledgeStore) -> None:
    """Planner feed (2): success statistics as an affordance prior; failures lower confidence."""
    unseen = store.skill_stats("push")
    assert unseen.attempts == 0 and unseen.mean == pytest.approx(0.5)
    for _ in range(8):
        store.record_skill_outcome("push", ["red_block", "left"], True)
    before = store.skill_stats("push", ["red_block", "left"])
    assert before.mean == pytest.approx(9 / 10)
    for _ in range(5):
        store.record_skill_outcome("push", ["red_block", "left"], False)
    after = store.skill_stats("push", ["red_block", "left"])
    assert after.attempts == 13 and after.failures == 5
    assert after.mean < before.mean and after.recent_mean < before.recent_mean
    store.record_skill_outcome("push", ["mug", "left"], False)
    overall = store.skill_stats("push")
    assert (overall.attempts, overall.successes) == (14, 8)
    assert {s.args for s in store.all_skill_stats()} == {("red_block", "left"), ("mug", "left")}


def test_recent_window_reacts_faster_than_lifetime_mean(tmp_path: Path) -> None:
    with KnowledgeStore(tmp_path / "w.sqlite", recent_window=5, clock=FakeClock()) as small:
        for success in [True] * 50 + [False] * 5:
            small.record_skill_outcome("pick", ["mug"], success)
        stats = small.skill_stats("pick", ["mug"])
        assert stats.recent_attempts == 5 and stats.recent_successes == 0
        assert stats.recent_mean == pytest.approx(1 / 7)
        assert stats.mean > 0.85


def test_causal_facts_supersede_per_pair_and_validate(store: KnowledgeStore) -> None:
    """Planner feed (3): causal facts written by studies."""
    store.add_causal_fact("red_block.mass", "decreases", "push_distance", -0.03, (-0.04, -0.02),
                          source="study:mass_push", n=200)
    store.add_causal_fact("drawer.damping", "decreases", "open_speed", -0.5, None, source="study:damping")
    (mass,) = store.causal_facts("red_block")
    assert (mass.effect, mass.ci_low, mass.ci_high, mass.n) == (-0.03, -0.04, -0.02, 200)
    assert mass.source == Provenance("study", "mass_push")
    store.add_causal_fact("red_block.mass", "decreases", "push_distance", -0.025, (-0.03, -0.02),
                          source="study:mass_push_v2")
    assert [c.effect for c in store.causal_facts("red_block")] == [-0.025]
    assert len(store.causal_facts("red_block", include_history=True)) == 2
    assert len(store.causal_facts()) == 2
    with pytest.raises(ValueError, match="contradicts effect"):
        store.add_causal_fact("a.x", "increases", "b", -1.0)
    with pytest.raises(ValueError, match="low <= high"):
        store.add_causal_fact("a.x", "increases", "b", 1.0, (2.0, 0.5))


def test_retrieval_ranks_by_similarity_and_entity(store: KnowledgeStore) -> None:
    store.add_facts([("red_block", "located_in", "drawer"), ("green_block", "located_in", "bowl"),
                     ("mug", "on", "plate"), ("plate", "color", "white")])
    store.add_causal_fact("red_block.mass", "decreases", "push_distance", -0.03, (-0.04, -0.02))
    found = store.retrieve("where is the red block", k=2)
    assert found.entities == ("red_block",)
    assert found.facts[0].item.triple == ("red_block", "located_in", "drawer")
    assert found.facts[0].score == pytest.approx(found.facts[0].similarity + 0.25)
    assert len(found.facts) == 2 and found.facts[0].score >= found.facts[1].score
    assert found.causal[0].item.subject == "red_block.mass"
    mug = store.retrieve("the mug", k=1)
    assert mug.facts[0].item.triple == ("mug", "on", "plate")


def test_retrieval_drops_superseded_facts_from_the_index(store: KnowledgeStore) -> None:
    store.add_fact("red_block", "located_in", "table")
    assert store.retrieve("red block table", k=5).facts[0].item.object == "table"
    store.add_fact("red_block", "located_in", "drawer")
    objects = [h.item.object for h in store.retrieve("red block table", k=5).facts]
    assert objects == ["drawer"]


def test_writes_from_a_store_without_encoder_are_embedded_on_retrieval(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    with KnowledgeStore(path) as plain:
        plain.add_facts([("bowl", "on", "table"), ("mug", "in", "drawer")])
        with pytest.raises(ValueError, match="no text encoder"):
            plain.retrieve("mug")
    with KnowledgeStore(path, encoder=HashingTextEncoder(dim=64)) as reader:
        assert reader.counts()["embeddings"] == 0
        assert reader.retrieve("mug in the drawer", k=1).facts[0].item.triple == ("mug", "in", "drawer")
        assert reader.counts()["embeddings"] == 2
        assert reader.refresh_index() == 0  # nothing left to encode


def test_index_sees_writes_from_another_store_instance(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    encoder = HashingTextEncoder(dim=64)
    with KnowledgeStore(path, encoder=encoder) as reader, KnowledgeStore(path, encoder=encoder) as writer:
        writer.add_fact("bowl", "on", "table")
        assert reader.retrieve("bowl", k=3).facts[0].item.object == "table"
        writer.add_fact("bowl", "on", "counter")
        assert [h.item.object for h in reader.retrieve("bowl", k=3).facts] == ["counter"]


def test_encoder_output_is_checked(tmp_path: Path) -> None:
    class WrongShape:
        dim = 8

        def encode(self, texts: list[str]) -> np.ndarray:
            return np.ones((len(texts), 4), dtype=np.float32)

    with KnowledgeStore(tmp_path / "m.sqlite", encoder=WrongShape()) as bad:
        with pytest.raises(ValueError, match=r"shape \(1, 4\), expected \(1, 8\)"):
            bad.add_fact("a", "b", "c")
        assert bad.counts()["facts"] == 0
    with pytest.raises(TypeError, match="encoder must have"):
        KnowledgeStore(tmp_path / "n.sqlite", encoder=object())


def test_retrieve_rejects_bad_arguments(store: KnowledgeStore) -> None:
    with pytest.raises(ValueError, match="non-empty string"):
        store.retrieve("  ")
    with pytest.raises(ValueError, match="positive int"):
        store.retrieve("mug", k=0)


def test_embedding_index_matches_brute_force_after_updates() -> None:
    rng = np.random.default_rng(0)
    index = EmbeddingIndex(dim=16, capacity=2)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index.upsert(list(range(300)), vectors)
    removed = set(range(0, 300, 3))
    index.remove([*sorted(removed), 9999])
    index.upsert([1], vectors[2:3])  # replace a vector in place
    kept = {i: vectors[i] for i in range(300) if i not in removed}
    kept[1] = vectors[2]
    query = vectors[7]
    brute = sorted(kept, key=lambda i: -float(kept[i] @ query))[:10]
    got = index.top_k(query, 10)
    assert [i for i, _ in got] == brute
    assert len(index) == 200 and 0 not in index and 1 in index
    assert index.top_k(query, 1000)[-1][1] <= got[-1][1]


def test_scene_facts_from_the_env_become_triples() -> None:
    triples = triples_from_scene_facts([["in", "red_block", "bowl"], ["closed", "drawer"], ["holding", "mug"],
                                        ["gripper_empty"]])
    assert triples == [Triple("red_block", "in", "bowl"), Triple("drawer", "state", "closed"),
                       Triple("gripper", "holding", "mug"), Triple("mug", "located_in", "gripper"),
                       Triple("gripper", "holding", "nothing")]
    with pytest.raises(ValueError, match="scene fact"):
        triples_from_scene_facts([["in", ""]])


def test_threads_share_one_store(store: KnowledgeStore) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(20):
                store.add_fact(f"obj_{worker}_{i}", "tag", "x")
                store.retrieve(f"obj {worker} {i}", k=1)
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert store.counts()["facts"] == 80


def test_a_failure_inside_an_episode_write_rolls_everything_back(store: KnowledgeStore,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import memory.store as store_module

    def broken(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store_module, "record_outcome", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.add_episode(hide_block_episode())
    assert store.counts() == {"facts": 0, "fact_history": 0, "episodes": 0, "skill_outcomes": 0,
                              "causal_facts": 0, "embeddings": 0}
    monkeypatch.undo()
    store.add_episode(hide_block_episode())  # the store is still usable afterwards
    assert store.counts()["episodes"] == 1


def test_nearest_takes_a_precomputed_vector(store: KnowledgeStore) -> None:
    ids = store.add_facts([("mug", "on", "plate"), ("bowl", "in", "drawer")])
    vector = HashingTextEncoder(dim=128).encode(["bowl in drawer"])[0]
    assert store.nearest(vector, k=1)[0][0] == ids[1]
    assert store.index_size() == 2
    with pytest.raises(ValueError, match="kind must be one of"):
        store.nearest(vector, k=1, kind="skill")


def test_retrieval_does_not_wait_for_a_busy_writer_and_saves_vectors_later(tmp_path: Path) -> None:
    import time

    path = tmp_path / "m.sqlite"
    with KnowledgeStore(path) as plain:
        plain.add_facts([("bowl", "on", "table"), ("mug", "in", "drawer")])
    writer = KnowledgeStore(path)
    reader = KnowledgeStore(path, encoder=HashingTextEncoder(dim=64), busy_timeout_s=5.0)
    writer.conn.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
    began = time.perf_counter()
    assert reader.retrieve("mug in the drawer", k=1).facts[0].item.triple == ("mug", "in", "drawer")
    assert time.perf_counter() - began < 1.0
    assert reader.counts()["embeddings"] == 0  # not saved yet: the lock was busy
    writer.conn.execute("COMMIT")
    writer.close()
    reader.close()  # saves what it encoded
    with KnowledgeStore(path) as check:
        assert check.counts()["embeddings"] == 2
