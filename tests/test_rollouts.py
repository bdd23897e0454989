"""Rollouts with a sample store: only missing samples are drawn; fresh runs are unchanged."""

import pandas as pd
import pytest

from cot_potential.engine import Completion
from cot_potential.rollouts import run_rollouts, sample_prefixes
from cot_potential.sample_store import SampleStore


class FakeEngine:
    """Deterministic like vLLM with a fixed seed: the same request list gives the same
    samples; a sample depends on the seed, the request's place in the call and its prompt."""

    def __init__(self, seed, calls):
        self.seed = seed
        calls.append(self)
        self.requests = []

    def generate(self, requests, sampling, progress=True):
        self.requests.extend(requests)
        return [
            [Completion((1,) * (j + 1), f"s{self.seed}-r{pos}-p{len(r.prompt_token_ids)}-{j}", "stop")
             for j in range(r.n)]
            for pos, r in enumerate(requests)
        ]


def prefixes(cuts=(0, 2, 4), problems=("a", "b")):
    rows = []
    for p in problems:
        for i, t in enumerate(cuts):
            rows.append({"prefix_id": f"{p}/0/{i}", "problem_id": p, "prompt_token_ids": [7, 8] + [9] * t,
                         "max_tokens": 20 - t})
    return pd.DataFrame(rows)


def run(tmp_path, table, n, calls, seed=5):
    store = SampleStore(tmp_path / "store", "identity")
    return sample_prefixes(table, n, {}, store=store, make_engine=lambda s: FakeEngine(s, calls), seed=seed,
                           progress=False)


def test_a_fresh_run_is_exactly_the_run_without_a_store(tmp_path):
    calls = []
    with_store = run(tmp_path, prefixes(), 4, calls)
    plain = run_rollouts(FakeEngine(5, []), prefixes(), 4, {}, progress=False)
    pd.testing.assert_frame_equal(with_store, plain)
    assert [c.seed for c in calls] == [5]


def test_raising_n_draws_only_the_missing_samples_with_a_new_seed(tmp_path):
    calls = []
    before = run(tmp_path, prefixes(), 4, calls)
    after = run(tmp_path, prefixes(), 6, calls)
    assert len(calls) == 2 and calls[1].seed != 5
    assert [r.n for r in calls[1].requests] == [2] * 6
    kept = after[after["sample"] < 4].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before.reset_index(drop=True), check_like=True)
    new = after[after["sample"] >= 4]
    assert new["completion_text"].str.startswith(f"s{calls[1].seed}-").all()
    assert after.groupby("prefix_id").size().eq(6).all()
    # the same history gives the same samples
    again_calls = []
    tmp2 = tmp_path / "again"
    run(tmp2, prefixes(), 4, again_calls)
    pd.testing.assert_frame_equal(run(tmp2, prefixes(), 6, again_calls), after)


def test_adding_cuts_samples_only_the_new_prefixes_and_lowering_n_needs_no_engine(tmp_path):
    calls = []
    before = run(tmp_path, prefixes(cuts=(0, 4)), 3, calls)
    after = run(tmp_path, prefixes(cuts=(0, 2, 4)), 3, calls)
    assert len(calls[1].requests) == 2 and {len(r.prompt_token_ids) for r in calls[1].requests} == {4}
    by_prompt = lambda df, t: df[df["prefix_id"].isin({f"{p}/0/{i}" for p in "ab" for i in t})]  # noqa: E731
    # old cut index 1 (t=4) is now cut index 2: same prompt, same samples
    assert by_prompt(before, [1])["completion_text"].tolist() == by_prompt(after, [2])["completion_text"].tolist()
    fewer = run(tmp_path, prefixes(cuts=(0, 2, 4)), 2, calls)
    assert len(calls) == 2 and fewer.groupby("prefix_id").size().eq(2).all()


def test_identical_prompts_keep_separate_streams(tmp_path):
    """Transfer's `alone` and `floor` batches at f = 0 share a prompt but must be independent."""
    table = pd.DataFrame({"prefix_id": ["q/alone", "q/floor"], "problem_id": ["q", "q"],
                          "prompt_token_ids": [[1, 2], [1, 2]], "max_tokens": [9, 9], "n": [4, 2]})
    calls = []
    out = run(tmp_path, table, 0, calls)
    texts = out.groupby("prefix_id")["completion_text"].apply(set)
    assert len(texts["q/alone"]) == 4 and len(texts["q/floor"]) == 2
    assert not texts["q/alone"] & texts["q/floor"]
    run(tmp_path, table.assign(n=[8, 2]), 0, calls)
    assert [r.n for r in calls[1].requests] == [4]


def test_store_parts_are_merged_and_survive_a_new_shard_count(tmp_path):
    calls = []
    run(tmp_path, prefixes(problems=("a",)), 2, calls)
    run(tmp_path, prefixes(problems=("a",)), 4, calls)
    store = SampleStore(tmp_path / "store", "identity")
    folders = [p for p in store.root.iterdir()]
    assert len(folders) == 1 and len(list(folders[0].glob("*.parquet"))) == 1
    assert len(store.load(["a"])) == 3 * 4
    # another model identity never sees these samples
    assert SampleStore(tmp_path / "store", "other").load(["a"]).empty


@pytest.mark.parametrize("keep", [True, False])
def test_token_ids_are_kept_only_when_asked(tmp_path, keep):
    store = SampleStore(tmp_path / "store", "identity", keep_token_ids=keep)
    out = sample_prefixes(prefixes(), 2, {}, store=store, make_engine=lambda s: FakeEngine(s, []), seed=1,
                          progress=False)
    assert ("token_ids" in out) == keep
