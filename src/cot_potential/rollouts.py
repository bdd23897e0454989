"""Rollouts: N sampled completions of every prefix, the expensive part of the study.

All prefixes of a shard go to the engine in one call, ordered so that the prefixes of one
trace are adjacent (they share most of their prompt, so the prefix cache reuses its KV
blocks), and each prefix is ONE request with ``n=N``. The token budget is the total
assistant length: a prefix cut at ``t`` tokens gets ``max_tokens = L_max - t``, so early
cuts are not truncated more than late ones.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .engine import Engine, Request

ROLLOUT_COLUMNS = ("prefix_id", "sample", "completion_text", "finish_reason", "n_tokens")


def request_order(prefixes: pd.DataFrame) -> pd.DataFrame:
    """Prefixes grouped by problem and by shared prompt, shortest first: the order that
    maximises prefix-cache hits (and a fixed order, which makes runs reproducible)."""
    lengths = prefixes["prompt_token_ids"].map(len)
    return (prefixes.assign(_len=lengths)
            .sort_values(["problem_id", "_len", "prefix_id"], kind="stable")
            .drop(columns="_len").reset_index(drop=True))


def run_rollouts(engine: Engine, prefixes: pd.DataFrame, n: int, sampling: dict[str, Any],
                 keep_token_ids: bool = False, progress: bool = True) -> pd.DataFrame:
    """One row per completion: ``prefix_id, sample, completion_text, finish_reason, n_tokens``.

    ``n`` completions per prefix, unless the prefix table has its own ``n`` column (e.g. the
    transfer stage's independent 4N batch at f = 0).
    """
    ordered = request_order(prefixes)
    per_prefix = ordered["n"].astype(int) if "n" in ordered else pd.Series(n, index=ordered.index)
    requests = [
        Request(ids, int(k), int(budget))
        for ids, k, budget in zip(ordered["prompt_token_ids"], per_prefix, ordered["max_tokens"])
    ]
    outputs = engine.generate(requests, sampling, progress)
    rows = []
    for prefix_id, completions in zip(ordered["prefix_id"], outputs):
        for sample, completion in enumerate(completions):
            row = {
                "prefix_id": prefix_id,
                "sample": sample,
                "completion_text": completion.text,
                "finish_reason": completion.finish_reason,
                "n_tokens": len(completion.token_ids),
            }
            if keep_token_ids:
                row["token_ids"] = list(completion.token_ids)
            rows.append(row)
    columns = list(ROLLOUT_COLUMNS) + (["token_ids"] if keep_token_ids else [])
    return pd.DataFrame(rows, columns=columns)


def rollout_job(card_path: str, prefixes_path: str, out: str, *, shard: int, shards: int, n: int,
                seed: int, keep_token_ids: bool, threads: int, config: dict[str, Any]) -> None:
    import logging

    from .engine import engine_for
    from .provenance import provenance
    from .shards import shard_rows
    from .tables import read_json, read_table, write_table

    card = read_json(card_path)
    prefixes = shard_rows(read_table(prefixes_path), shard, shards)
    logging.getLogger(__name__).info("shard %d/%d: %d prefixes x %d samples", shard, shards, len(prefixes), n)
    engine = engine_for(card, seed, threads, config)
    rollouts = run_rollouts(engine, prefixes, n, card["sampling"], keep_token_ids)
    write_table(rollouts, out, provenance(config, model=card["name"], model_identity=card["identity"],
                                          prompt_version=card["prompt"].get("version"),
                                          seed=seed, shard=shard, shards=shards, n=n, inputs=[prefixes_path]))
