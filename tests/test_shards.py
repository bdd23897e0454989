"""Shards: which problems a shard holds, and how many shards a run gets."""

import pandas as pd
import pytest

from cot_potential.shards import assign_shards, shard_count, shard_rows


def test_shards_are_sized_by_planned_tokens_with_one_to_one_per_problem():
    assert shard_count(100, problems=30, tokens_per_shard=1000) == 1  # a small run: one shard
    assert shard_count(1000, problems=30, tokens_per_shard=1000) == 1
    assert shard_count(1001, problems=30, tokens_per_shard=1000) == 2
    assert shard_count(10**9, problems=30, tokens_per_shard=1000) == 30  # a shard is a set of problems
    assert shard_count(0, problems=30, tokens_per_shard=1000) == 1
    with pytest.raises(ValueError):
        shard_count(100, problems=3, tokens_per_shard=0)


def test_every_problem_is_in_exactly_one_shard_whatever_the_row_order():
    ids = [f"p{i}" for i in range(7)]
    owner = assign_shards(ids, 3)
    assert owner == assign_shards(reversed(ids), 3) and sorted(set(owner.values())) == [0, 1, 2]
    df = pd.DataFrame({"problem_id": ids * 2})
    parts = [shard_rows(df, i, 3) for i in range(3)]
    assert sum(len(p) for p in parts) == len(df)
    assert all(set(a["problem_id"]).isdisjoint(b["problem_id"]) for a in parts for b in parts if a is not b)
