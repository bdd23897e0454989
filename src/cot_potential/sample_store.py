"""The sample store: every completion ever drawn for a prefix, so a run samples only what is missing.

Raising N, adding cuts, changing the shard count or rerunning a shard after a crash (or after
an upstream change that leaves a prefix's prompt as it was) must not pay again for samples
that exist. Snakemake deletes a job's outputs before it runs, so the samples live beside them,
in ``results/samples/{model}/{dataset}/{partition}/{problem}/part-*.parquet``:

- a prefix's samples form a *stream* keyed by what determines their distribution: the exact
  prompt token ids and the token budget (``max_tokens``), inside a partition named by the
  model's identity (weights, revision, prompt, chat template, sampling), so a changed model
  never reuses old samples;
- sample ``i`` of a stream is the ``i``-th draw; a run that needs samples ``0..n-1`` takes the
  stored ones and draws only the rest;
- files are per problem (shards are sets of problems, so jobs never write the same folder,
  and reuse survives a change of the shard count), written atomically, one part per
  engine call, merged into one part when a job finishes.

Draws made with different engine seeds are independent; the caller makes sure that new
samples of a stream never come from the seed (and request list) that drew its old ones.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from .ids import digest
from .tables import write_table

log = logging.getLogger(__name__)

STORE_COLUMNS = ("key", "sample", "completion_text", "finish_reason", "n_tokens", "engine_seed")


def stream_key(prompt_token_ids: Sequence[int], max_tokens: int, copy: int = 0, stream: str = "main") -> str:
    """The identity of a prefix's sample stream (within one model partition).

    ``copy`` numbers prefixes with the same prompt and budget in one table: they are separate
    estimates by design (the transfer stage's ``alone`` and ``floor`` batches at f = 0 must be
    independent; cut 0 of K traces), so each keeps a stream of its own. ``stream`` names a
    further independent stream of the same prefix (adaptive sampling's ``search`` samples,
    which must never be reused as estimates).
    """
    key: dict = {"prompt": [int(i) for i in prompt_token_ids], "max_tokens": int(max_tokens), "copy": int(copy)}
    if stream != "main":
        key["stream"] = stream
    return digest(key, length=24)


def stream_keys(prefixes: pd.DataFrame) -> list[str]:
    """The stream key of every row of a prefix table (copies numbered in ``prefix_id`` order)."""
    content = [digest([[int(i) for i in ids], int(budget)])
               for ids, budget in zip(prefixes["prompt_token_ids"], prefixes["max_tokens"])]
    frame = pd.DataFrame({"content": content, "prefix_id": prefixes["prefix_id"].values})
    copy = frame.sort_values("prefix_id", kind="stable").groupby("content").cumcount().reindex(frame.index)
    return [stream_key(ids, budget, c)
            for ids, budget, c in zip(prefixes["prompt_token_ids"], prefixes["max_tokens"], copy)]


class SampleStore:
    """Samples of one model (identity) on one dataset, stored per problem."""

    def __init__(self, root: str | Path, identity: str, keep_token_ids: bool = False):
        # Samples without token ids cannot serve a run that keeps them: separate partitions.
        self.root = Path(root) / (identity + ("-ids" if keep_token_ids else ""))
        self.keep_token_ids = keep_token_ids

    def _folder(self, problem_id: str) -> Path:
        return self.root / digest(str(problem_id))

    def load(self, problem_ids: Iterable[str]) -> pd.DataFrame:
        """All stored samples of these problems: ``key, sample, completion_text, ...``."""
        frames = []
        for problem_id in sorted(set(problem_ids)):
            for part in sorted(self._folder(problem_id).glob("*.parquet")):
                frames.append(pd.read_parquet(part))
        if not frames:
            return pd.DataFrame(columns=self.columns)
        stored = pd.concat(frames, ignore_index=True)
        return stored.drop_duplicates(["key", "sample"], keep="first").reset_index(drop=True)

    @property
    def columns(self) -> list[str]:
        return list(STORE_COLUMNS) + (["token_ids"] if self.keep_token_ids else [])

    def add(self, problem_id: str, samples: pd.DataFrame) -> None:
        """Store new samples of one problem (one atomic part file)."""
        if samples.empty:
            return
        write_table(samples[self.columns], self._folder(problem_id) / f"part-{uuid.uuid4().hex}.parquet")

    def compact(self, problem_ids: Iterable[str]) -> None:
        """Merge each problem's parts into one (the new file is complete before old ones go)."""
        for problem_id in sorted(set(problem_ids)):
            parts = sorted(self._folder(problem_id).glob("part-*.parquet"))
            if len(parts) < 2:
                continue
            merged = self.load([problem_id])
            self.add(problem_id, merged)
            for part in parts:
                part.unlink()
