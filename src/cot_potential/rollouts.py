"""Rollouts: N sampled completions of every prefix, the expensive part of the study.

All prefixes of a shard go to the engine in one call, ordered so that the prefixes of one
trace are adjacent (they share most of their prompt, so the prefix cache reuses its KV
blocks), and each prefix is ONE request with ``n=N``. The token budget is the total
assistant length: a prefix cut at ``t`` tokens gets ``max_tokens = L_max - t``, so early
cuts are not truncated more than late ones.

With a sample store (``sample_store.py``) a job draws only the samples its prefixes do not
have yet: raising N or adding cuts keeps every existing sample and samples the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .engine import Engine, Request
from .ids import digest, sub_seed
from .sample_store import SampleStore, stream_keys

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
    per_prefix = _samples_wanted(ordered, n)
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


def _samples_wanted(ordered: pd.DataFrame, n: int) -> pd.Series:
    return ordered["n"].astype(int) if "n" in ordered else pd.Series(n, index=ordered.index)


def resume_seed(seed: int, work: list[tuple[str, int, int]]) -> int:
    """The engine seed of a call that draws ``work`` = ``[(stream, first sample, count)]``.

    Only a complete fresh draw uses the job's own seed (so a run without stored samples gives
    exactly the samples it gave before the store existed). Any other draw gets a seed derived
    from what it draws: never the seed, with the same request list, that drew a stream's
    earlier samples (which would repeat them instead of drawing new ones), yet reproducible.
    """
    return sub_seed(seed, "resume", digest(work))


@dataclass(frozen=True)
class Draw:
    """Samples ``start .. start+count-1`` of one stream (a prefix's prompt and budget)."""

    key: str
    problem_id: str
    prompt_token_ids: Sequence[int]
    max_tokens: int
    start: int
    count: int


class StreamSampler:
    """Samples of prefix streams: from the store where they exist, else drawn, all missing
    ones of a ``draw`` call in ONE engine call (the engine starts on the first such call)."""

    def __init__(self, store: SampleStore, make_engine: Callable[[int], Engine], seed: int,
                 sampling: dict[str, Any], problem_ids: Sequence[str], progress: bool = True):
        self.store, self.make_engine, self.seed = store, make_engine, seed
        self.sampling, self.progress = sampling, progress
        self.engine: Engine | None = None
        self.touched: set[str] = set()
        self.samples: dict[str, dict[int, dict[str, Any]]] = {}
        for row in store.load(problem_ids).to_dict("records"):
            self.samples.setdefault(row["key"], {})[int(row["sample"])] = row
        self.n_stored, self.n_drawn, self._calls = sum(map(len, self.samples.values())), 0, 0

    def draw(self, draws: Sequence[Draw]) -> list[list[dict[str, Any]]]:
        """Per draw, its samples in order (rows with ``completion_text, finish_reason, n_tokens``)."""
        missing = [[i for i in range(d.start, d.start + d.count) if i not in self.samples.get(d.key, {})]
                   for d in draws]
        todo = [j for j, m in enumerate(missing) if m]
        if todo:
            fresh_call = (self._calls == 0 and all(missing[j] == list(range(d.start, d.start + d.count))
                                                   and d.start == 0 and d.key not in self.samples
                                                   for j, d in enumerate(draws)))
            if self.engine is None:
                work = [(draws[j].key, missing[j][0], len(missing[j])) for j in todo]
                self.engine = self.make_engine(self.seed if fresh_call else resume_seed(self.seed, work))
            requests = [Request(draws[j].prompt_token_ids, len(missing[j]), int(draws[j].max_tokens)) for j in todo]
            new_rows: dict[str, list[dict[str, Any]]] = {}

            def keep(i: int, completions: Sequence[Any]) -> None:
                j = todo[i]
                rows = [self._row(draws[j].key, index, completion) for index, completion in zip(missing[j], completions)]
                for row in rows:
                    self.samples.setdefault(draws[j].key, {})[row["sample"]] = row
                self.n_drawn += len(rows)
                new_rows.setdefault(draws[j].problem_id, []).extend(rows)

            if getattr(self.engine, "streams_results", False):
                # A server's answers are stored one request at a time, as they arrive: a dead
                # server or a rate limit later in the call loses nothing.
                def keep_now(i: int, completions: Sequence[Any]) -> None:
                    keep(i, completions)
                    self._store(new_rows)

                self.engine.generate(requests, self.sampling, self.progress, on_result=keep_now)
            else:
                for i, completions in enumerate(self.engine.generate(requests, self.sampling, self.progress)):
                    keep(i, completions)
            self._store(new_rows)
        self._calls += 1
        return [[self.samples[d.key][i] for i in range(d.start, d.start + d.count)] for d in draws]

    def _row(self, key: str, index: int, completion: Any) -> dict[str, Any]:
        row = {"key": key, "sample": index, "completion_text": completion.text,
               "finish_reason": completion.finish_reason, "n_tokens": len(completion.token_ids),
               "engine_seed": self.engine.seed}
        if self.store.keep_token_ids:
            row["token_ids"] = list(completion.token_ids)
        return row

    def _store(self, new_rows: dict[str, list[dict[str, Any]]]) -> None:
        """Write (and forget) the rows not stored yet, one part file per problem."""
        for problem_id, rows in sorted(new_rows.items()):
            self.store.add(problem_id, pd.DataFrame(rows, columns=self.store.columns))
            self.touched.add(problem_id)
        new_rows.clear()

    def close(self) -> None:
        """Merge the store parts written by this job (one file per problem again)."""
        self.store.compact(self.touched)


def sample_prefixes(prefixes: pd.DataFrame, n: int, sampling: dict[str, Any], *, store: SampleStore,
                    make_engine: Callable[[int], Engine], seed: int, progress: bool = True) -> pd.DataFrame:
    """Like ``run_rollouts``, but take existing samples from ``store`` and draw only the rest.

    ``make_engine(seed)`` is called only if something is missing (an engine start costs
    ~20 s on CPU, minutes for a large model on GPUs).
    """
    ordered = request_order(prefixes)
    wanted = _samples_wanted(ordered, n).tolist()
    keys = stream_keys(ordered)
    sampler = StreamSampler(store, make_engine, seed, sampling, ordered["problem_id"].unique(), progress)
    draws = [Draw(k, pid, ids, int(budget), 0, w)
             for k, pid, ids, budget, w in zip(keys, ordered["problem_id"], ordered["prompt_token_ids"],
                                               ordered["max_tokens"], wanted)]
    samples = sampler.draw(draws)
    sampler.close()
    logging.getLogger(__name__).info("%d prefixes, %d samples: %d were in the store, %d drawn", len(ordered),
                                     sum(wanted), sum(wanted) - sampler.n_drawn, sampler.n_drawn)
    return rollout_table(ordered["prefix_id"], samples, store.keep_token_ids)


def rollout_table(prefix_ids: Sequence[str], samples: Sequence[Sequence[dict[str, Any]]],
                  keep_token_ids: bool) -> pd.DataFrame:
    """The rollout table of ``run_rollouts``: one row per (prefix, sample), samples numbered 0.."""
    rows = []
    for prefix_id, group in zip(prefix_ids, samples):
        for sample, s in enumerate(group):
            row = {"prefix_id": prefix_id, "sample": sample, "completion_text": s["completion_text"],
                   "finish_reason": s["finish_reason"], "n_tokens": int(s["n_tokens"])}
            if keep_token_ids:
                row["token_ids"] = list(s["token_ids"])
            rows.append(row)
    columns = list(ROLLOUT_COLUMNS) + (["token_ids"] if keep_token_ids else [])
    return pd.DataFrame(rows, columns=columns)


def rollout_job(card_path: str, prefixes_path: str, out: str, *, shard: int, shards: int, n: int,
                seed: int, keep_token_ids: bool, threads: int, config: dict[str, Any],
                store: str | None = None) -> None:
    """The rollout rule: N completions of every prefix of one shard; with ``store`` (a folder),
    existing samples are reused and only the missing ones drawn."""
    from .engine import engine_for
    from .provenance import provenance
    from .shards import shard_rows
    from .tables import read_json, read_table, write_table

    card = read_json(card_path)
    prefixes = shard_rows(read_table(prefixes_path), shard, shards)
    logging.getLogger(__name__).info("shard %d/%d: %d prefixes x %d samples", shard, shards, len(prefixes), n)
    if store is None:
        engine = engine_for(card, seed, threads, config)
        rollouts = run_rollouts(engine, prefixes, n, card["sampling"], keep_token_ids)
    else:
        rollouts = sample_prefixes(prefixes, n, card["sampling"],
                                   store=SampleStore(store, card["identity"], keep_token_ids),
                                   make_engine=lambda engine_seed: engine_for(card, engine_seed, threads, config),
                                   seed=seed)
    write_table(rollouts, out, provenance(config, model=card["name"], model_identity=card["identity"],
                                          prompt_version=card["prompt"].get("version"),
                                          seed=seed, shard=shard, shards=shards, n=n, inputs=[prefixes_path],
                                          **engine_facts(card, config)))


def engine_facts(card: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """What provenance says about the engine: the backend, and for a server its model and
    version, and that its samples are not bit-reproducible (a shared server batches other
    requests with ours; per-request seeds are off by default)."""
    from .engine import engine_settings

    backend = engine_settings(card, config).backend
    if backend != "openai":
        return {"engine_backend": backend}
    return {"engine_backend": backend, "server": card.get("server"), "bit_reproducible": False}
