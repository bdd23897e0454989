"""Adaptive sampling (``rollouts.sampling: adaptive``): spend rollouts where the curve needs them.

The fixed protocol (the paper's, the default) samples N completions at every cut of a fixed
grid. The adaptive protocol samples in rounds instead, per trace:

1. **refinement** (``refine.py``): from the coarse grid (``prefixes.fractions``), bisect the
   intervals whose potential changes significantly, on a small separate *search* sample per
   cut, until each change is bracketed within ``min_gap`` of the span;
2. **sequential estimation** (``sequential.py``) of every reported cut (the coarse ones and
   the brackets of each change) on *fresh* samples: ``batch`` at a time until its confidence
   sequence is narrower than ``±half_width`` (never below ``min_n``, at most ``max_n``), with the
   estimator that is unbiased under that stopping rule.

Verdicts are needed while sampling, so one job per shard runs the engine, grades each round
with a ``GraderPool`` and decides the next round; every sample goes through the sample store
(a crashed job resumes where it stopped; raising ``max_n`` samples only what is missing). The
job writes the shard's rollouts (every sample, search ones included, graded again by the
ordinary ``grade`` rule) and its prefix table (every cut it sampled: one ``estimate`` row per
reported cut, one ``search`` row per cut with search samples). The ``potentials`` stage
reports the estimate rows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .refine import ESTIMATE, SEARCH, Need, RefineSettings, TraceDesign
from .sequential import StoppingRule, confidence_sequence

log = logging.getLogger(__name__)

MAX_ROUNDS = 10_000


@dataclass(frozen=True)
class AdaptiveSettings:
    """Config key ``rollouts.adaptive`` (``max_n`` defaults to ``rollouts.n``)."""

    batch: int = 16
    min_n: int = 16
    max_n: int = 128
    half_width: float = 0.1
    level: float = 0.95
    refine: bool = True
    search_n: int = 32
    refine_alpha: float = 0.05
    min_gap: float = 0.01
    max_cuts: int = 32

    @classmethod
    def from_config(cls, cfg: dict[str, Any], n: int) -> AdaptiveSettings:
        cfg = dict(cfg)
        if cfg.get("max_n") is None:
            cfg["max_n"] = n
        return cls(**{k: v for k, v in cfg.items() if k in cls.__dataclass_fields__})

    @property
    def rule(self) -> StoppingRule:
        return StoppingRule(batch=self.batch, min_n=self.min_n, max_n=self.max_n,
                            half_width=self.half_width, level=self.level)

    def refinement(self, span_tokens: int) -> RefineSettings | None:
        """Refinement settings for a trace whose cut span has ``span_tokens`` tokens."""
        if not self.refine:
            return None
        return RefineSettings(search_n=self.search_n, alpha=self.refine_alpha,
                              min_gap=max(1, math.ceil(self.min_gap * span_tokens)), max_cuts=self.max_cuts)


Sampler = Callable[[list[tuple[Hashable, Need]]], list[list[bool]]]


def run_designs(designs: dict[Hashable, TraceDesign], sample: Sampler) -> int:
    """Drive every trace's design to completion; all traces' needs of a round go to ``sample``
    together (one engine call). Returns the number of rounds."""
    for rounds in range(MAX_ROUNDS):
        work = [(key, need) for key, design in designs.items() for need in design.needs()]
        if not work:
            return rounds
        outcomes = sample(work)
        for (key, need), got in zip(work, outcomes):
            if len(got) != need.count:
                raise RuntimeError(f"asked {need.count} samples of {key} at token {need.token}, got {len(got)}")
            designs[key].record(need.token, need.phase, got)
        active = sum(not d.done for d in designs.values())
        log.info("round %d: %d samples drawn, %d of %d traces still sampling", rounds + 1,
                 sum(n.count for _, n in work), active, len(designs))
    raise RuntimeError(f"adaptive sampling did not finish within {MAX_ROUNDS} rounds")


# --------------------------------------------------------------------------- the rollout job


def _trace_key(problem_id: str, trace_id: int) -> tuple[str, int]:
    return str(problem_id), int(trace_id)


class _Prefixes:
    """Prefix rows of a shard: the coarse ones from the prefix table, refined ones cut on demand
    (with the same function as the prefix stage, so a refined cut is an ordinary prefix)."""

    def __init__(self, coarse: pd.DataFrame, traces: pd.DataFrame, tokenizer: Any, card: dict[str, Any],
                 cut_settings: Any):
        from .prefixes import cut_span

        self.tokenizer, self.card, self.settings = tokenizer, card, cut_settings
        self.traces = {_trace_key(t["problem_id"], t["trace_id"]): t for t in traces.to_dict("records")}
        self.rows: dict[tuple[tuple[str, int], int], dict[str, Any]] = {}
        for row in coarse.to_dict("records"):
            self.rows[(_trace_key(row["problem_id"], row["trace_id"]), int(row["cut_token"]))] = row
        self.spans = {key: cut_span(t, cut_settings, card["thinking"]) for key, t in self.traces.items()}

    def coarse_tokens(self) -> dict[tuple[str, int], list[int]]:
        out: dict[tuple[str, int], list[int]] = {}
        for key, token in self.rows:
            out.setdefault(key, []).append(token)
        return out

    def row(self, key: tuple[str, int], token: int) -> dict[str, Any]:
        if (key, token) not in self.rows:
            from dataclasses import replace

            from .prefixes import make_prefixes

            start, stop = self.spans[key]
            fraction = (token - start) / (stop - start)
            one = replace(self.settings, mode="fraction", fractions=(fraction,))
            made = make_prefixes(pd.DataFrame([self.traces[key]]), self.tokenizer, self.card, one)
            row = made.iloc[0].to_dict()
            if int(row["cut_token"]) != token:
                raise RuntimeError(f"refined cut landed on token {row['cut_token']}, not {token}")
            row["nominal_fraction"] = float("nan")  # not a configured fraction
            self.rows[(key, token)] = row
        return self.rows[(key, token)]


def design_table(designs: dict[tuple[str, int], TraceDesign], prefixes: _Prefixes) -> pd.DataFrame:
    """The shard's prefix table: per trace and cut, an ``estimate`` row if the cut is reported
    and a ``search`` row if it has search samples (``n`` = samples used, ``role``)."""
    rows = []
    for key, design in sorted(designs.items()):
        for index, cut in enumerate(design.in_order()):
            base = dict(prefixes.row(key, cut.token))
            base["cut_index"] = index
            stem = f"{key[0]}/{key[1]}/t{cut.token}"
            for phase, outcomes, wanted in ((ESTIMATE, cut.estimate, cut.reported), (SEARCH, cut.search, True)):
                if wanted and outcomes:
                    rows.append({**base, "prefix_id": stem if phase == ESTIMATE else f"{stem}/{SEARCH}",
                                 "phase": phase, "role": cut.role, "n": len(outcomes)})
    return pd.DataFrame(rows)


def adaptive_rollout_job(card_path: str, traces_path: str, prefixes_path: str, problems_path: str,
                         out_rollouts: str, out_prefixes: str, *, shard: int, shards: int, n: int,
                         settings: dict[str, Any], cut_settings: dict[str, Any], grader: str,
                         keep_token_ids: bool = False,
                         grading: dict[str, Any], seed: int, store: str, threads: int,
                         config: dict[str, Any]) -> None:
    """The adaptive rollout rule for one shard (see the module docstring)."""
    from .engine import engine_for
    from .grading import CORRECT, GraderPool, GradingSettings, grade_completions
    from .models import load_tokenizer
    from .prefixes import CutSettings
    from .provenance import provenance
    from .rollouts import Draw, StreamSampler, rollout_table
    from .sample_store import SampleStore, stream_key
    from .shards import shard_rows
    from .tables import read_json, read_table, write_table

    card = read_json(card_path)
    adaptive = AdaptiveSettings.from_config(settings, n)
    coarse = shard_rows(read_table(prefixes_path), shard, shards)
    traces = shard_rows(read_table(traces_path), shard, shards)
    problems = read_table(problems_path).set_index("problem_id")
    prefixes = _Prefixes(coarse, traces, load_tokenizer(card), card, CutSettings.from_config(cut_settings))
    designs = {}
    for key, tokens in prefixes.coarse_tokens().items():
        start, stop = prefixes.spans[key]
        designs[key] = TraceDesign(tokens, adaptive.rule, adaptive.refinement(stop - start))
    log.info("shard %d/%d: %d traces, %d coarse cuts, adaptive %s", shard, shards, len(designs), len(coarse), adaptive)

    def stream(key: tuple[str, int], token: int, phase: str) -> Draw:
        row = prefixes.row(key, token)
        name = "main" if phase == ESTIMATE else phase  # estimates share the fixed protocol's stream
        return Draw(stream_key(row["prompt_token_ids"], row["max_tokens"], copy=key[1], stream=name),
                    key[0], row["prompt_token_ids"], int(row["max_tokens"]), 0, 0)

    sampler = StreamSampler(SampleStore(store, card["identity"], keep_token_ids),
                            lambda engine_seed: engine_for(card, engine_seed, threads, config), seed, card["sampling"],
                            sorted({k[0] for k in designs}))
    grading_settings = GradingSettings.from_config(grading)
    with GraderPool(grading_settings) as pool:

        def sample(work: list[tuple[Hashable, Need]]) -> list[list[bool]]:
            draws = []
            for key, need in work:
                base = stream(key, need.token, need.phase)
                draws.append(Draw(base.key, base.problem_id, base.prompt_token_ids, base.max_tokens,
                                  need.start, need.count))
            drawn = sampler.draw(draws)
            texts, owners, finish = [], [], []
            for (key, need), samples in zip(work, drawn):
                text = prefixes.row(key, need.token)["prefix_text"]
                texts.extend(text + s["completion_text"] for s in samples)
                owners.extend([key[0]] * len(samples))
                finish.extend(s["finish_reason"] for s in samples)
            graded = grade_completions(grader, texts, problems.loc[owners].reset_index(), finish, card=card,
                                       settings=grading_settings, pool=pool)
            correct = iter((graded["verdict"] == CORRECT).tolist())
            return [[next(correct) for _ in range(need.count)] for _, need in work]

        rounds = run_designs(designs, sample)
    sampler.close()
    table = design_table(designs, prefixes)
    samples = []
    for row in table.to_dict("records"):
        key = _trace_key(row["problem_id"], row["trace_id"])
        base = stream(key, int(row["cut_token"]), row["phase"])
        samples.append(sampler.draw([Draw(base.key, base.problem_id, base.prompt_token_ids, base.max_tokens,
                                          0, int(row["n"]))])[0])
    rollouts = rollout_table(table["prefix_id"], samples, keep_token_ids)
    used = int(table["n"].sum())
    log.info("%d rounds, %d samples used (%d drawn now), %d cuts of which %d reported", rounds, used,
             sampler.n_drawn, sum(len(d.cuts) for d in designs.values()), int((table["phase"] == ESTIMATE).sum()))
    record = provenance(config, model=card["name"], model_identity=card["identity"], seed=seed, shard=shard,
                        shards=shards, sampling="adaptive", adaptive=settings, rounds=rounds,
                        prompt_version=card["prompt"].get("version"), inputs=[prefixes_path, traces_path])
    write_table(table, out_prefixes, record)
    write_table(rollouts, out_rollouts, record)


# --------------------------------------------------------------------------- potentials


def adaptive_potentials(prefixes: pd.DataFrame, grades: pd.DataFrame, settings: AdaptiveSettings) -> pd.DataFrame:
    """The potentials table of an adaptive run: the reported cuts (estimate rows), with the
    unbiased sequential estimate as ``potential`` and the confidence sequence as the CI.

    ``n_correct / n_samples`` stays the plain share (``potential_mle``); ``cut_index`` numbers
    the reported cuts of a trace in order.
    """
    from .potentials import compute_potentials

    estimates = prefixes[prefixes["phase"] == ESTIMATE]
    table = compute_potentials(estimates, grades[grades["prefix_id"].isin(set(estimates["prefix_id"]))])
    rule = settings.rule
    looks = set(rule.looks())
    table["potential_mle"] = table["potential"]
    table["potential"] = [rule.estimate(int(k), int(m)) if m in looks else k / m
                          for k, m in zip(table["n_correct"], table["n_samples"])]
    low, high = confidence_sequence(table["n_correct"].to_numpy(), table["n_samples"].to_numpy(), rule.level)
    table["ci_low"], table["ci_high"] = np.asarray(low), np.asarray(high)
    table = table.drop(columns=[c for c in ("phase",) if c in table])
    table = table.sort_values(["problem_id", "trace_id", "cut_token"]).reset_index(drop=True)
    table["cut_index"] = table.groupby(["problem_id", "trace_id"]).cumcount().astype("int64")
    return table
