"""Which shard a problem belongs to: heavy stages run per shard of problems."""

from __future__ import annotations

import math
from collections.abc import Iterable


def assign_shards(problem_ids: Iterable[str], n_shards: int) -> dict[str, int]:
    """Round-robin over the sorted ids: balanced shards, independent of row order."""
    if n_shards < 1:
        raise ValueError("the number of shards must be >= 1")
    return {pid: i % n_shards for i, pid in enumerate(sorted(set(problem_ids)))}


def shard_rows(df, shard: int, n_shards: int, column: str = "problem_id"):
    """Rows of ``df`` whose problem is in ``shard``."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} outside 0..{n_shards - 1}")
    owner = assign_shards(df[column], n_shards)
    return df[df[column].map(owner) == shard]


def shard_count(planned_tokens: float, problems: int, tokens_per_shard: float) -> int:
    """Shards of one run: enough that none plans more than ``tokens_per_shard`` generated
    tokens, at least one, and never more than the run has problems (a shard is a set of
    problems). Planned, not measured: the jobs a config makes never change once it runs."""
    if tokens_per_shard <= 0:
        raise ValueError("tokens_per_shard must be > 0")
    return max(1, min(int(problems), math.ceil(planned_tokens / tokens_per_shard)))
