"""Potential-optimized CoT: build a trace chunk by chunk, keeping the candidate of highest
estimated potential, then measure what was built on *fresh* rollouts.

At every step each unfinished problem samples ``candidates`` (M) continuations of at most
``chunk_tokens`` tokens (in ``sentence`` mode cut after the first sentence or line end);
each candidate's potential is estimated from ``n_estimate`` rollouts (a candidate that ends
the turn is graded itself: its potential is 1 or 0), and the best is appended. Choosing the
best of M noisy estimates makes the chosen prefix look better than it is (the winner's
curse), so the chosen prefixes are re-estimated on fresh rollouts, and the finished traces
get an ordinary potential curve (the pipeline's own cutting, rollout, grading and potential
code, N samples per cut, new samples) that the dynamics stage reads like any other run.

Every generated token is counted (candidates, discarded sentence tails and estimation
rollouts), so the comparison with ordinary traces and with best-of-n sampling is at equal
generated tokens (``table_job``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from .engine import Engine, Request
from .grading import CORRECT, GradingSettings, grade_completions, grade_rollouts
from .prefixes import CutSettings, sentence_boundaries, make_prefixes
from .prompting import prompt_token_ids
from .rollouts import run_rollouts
from .traces import _finish, grade_traces

log = logging.getLogger(__name__)

STEP_COLUMNS = ("problem_id", "step", "candidate", "n_tokens", "finished", "estimate", "chosen",
                "fresh_estimate", "prefix_tokens")
TABLE_COLUMNS = (
    "model", "dataset", "method", "n_problems", "accuracy", "accuracy_ci_low", "accuracy_ci_high",
    "monotone_rate", "monotone_rate_ci_low", "monotone_rate_ci_high", "tokens_per_problem",
    "best_of_n", "selected_potential", "fresh_potential", "winners_curse_gap", "mean_steps",
)


@dataclass(frozen=True)
class OptimizeSettings:
    """Config key ``optimize`` (without ``enabled``/``runs``)."""

    chunk: str = "sentence"  # sentence | tokens
    chunk_tokens: int = 24
    candidates: int = 4
    n_estimate: int = 8
    max_steps: int = 32
    limit: int | None = None

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> OptimizeSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in known})


def chunk_of(token_ids: tuple[int, ...], pieces: list[str], mode: str) -> int:
    """How many of a candidate's tokens form its chunk: all of them, or (sentence mode) up to
    and including the first token that ends a sentence or a line."""
    if mode == "tokens":
        return len(token_ids)
    ends = sentence_boundaries(pieces)
    return ends[0] if ends else len(token_ids)


@dataclass
class _Build:
    problem_id: str
    gold: str
    prompt: list[int]
    chosen: list[int]
    finished: bool = False
    tokens_spent: int = 0
    steps: int = 0


def _estimate(engine: Engine, tokenizer: Any, card: dict[str, Any], builds: list[_Build],
              prefixes: list[list[int]], n: int, kind: str, grading: GradingSettings,
              problems: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Share of ``n`` rollouts from each (build, prefix) that reach the correct answer, and the
    tokens those rollouts generated."""
    if not prefixes:
        return np.zeros(0), np.zeros(0, dtype=int)
    requests = [Request(b.prompt + p, n, max(1, card["max_tokens"] - len(p))) for b, p in zip(builds, prefixes)]
    outputs = engine.generate(requests, card["sampling"], progress=False)
    texts, owners, reasons, spent = [], [], [], np.zeros(len(prefixes), dtype=int)
    for i, (p, group) in enumerate(zip(prefixes, outputs)):
        head = tokenizer.decode(p, skip_special_tokens=True)
        for c in group:
            texts.append(head + c.text)
            owners.append(builds[i].problem_id)
            reasons.append(c.finish_reason)
            spent[i] += len(c.token_ids)
    graded = grade_completions(kind, texts, problems.set_index("problem_id").loc[owners].reset_index(), reasons,
                               card=card, settings=grading)
    correct = (graded["verdict"] == CORRECT).to_numpy().reshape(len(prefixes), n)
    return correct.mean(axis=1), spent


def build_traces(engine: Engine, tokenizer: Any, card: dict[str, Any], problems: pd.DataFrame,
                 settings: OptimizeSettings, kind: str, grading: GradingSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Potential-optimized traces for ``problems`` and the record of every step's candidates."""
    stop_ids = set(card["stop_token_ids"])
    builds = [_Build(pid, str(gold), prompt_token_ids(tokenizer, card["prompt"], text, card["chat_template_kwargs"]), [])
              for pid, text, gold in zip(problems["problem_id"], problems["problem"], problems["answer"])]
    steps: list[dict[str, Any]] = []
    for step in range(settings.max_steps):
        active = [b for b in builds if not b.finished and len(b.chosen) < card["max_tokens"]]
        if not active:
            break
        budgets = [min(settings.chunk_tokens, card["max_tokens"] - len(b.chosen)) for b in active]
        outputs = engine.generate([Request(b.prompt + b.chosen, settings.candidates, k) for b, k in zip(active, budgets)],
                                  card["sampling"], progress=False)
        owners, chunks, ends, done_texts, done_owners = [], [], [], [], []
        for b, group in zip(active, outputs):
            for j, c in enumerate(group):
                b.tokens_spent += len(c.token_ids)
                pieces = [tokenizer.decode([t]) for t in c.token_ids]
                keep = chunk_of(c.token_ids, pieces, settings.chunk)
                chunk = list(c.token_ids[:keep])
                ended = keep == len(c.token_ids) and c.finish_reason == "stop" and bool(chunk) and chunk[-1] in stop_ids
                owners.append((b, j))
                chunks.append(chunk)
                ends.append(ended)
        # A candidate that ends the turn is a finished trace: its potential is its own verdict.
        finished = [i for i, e in enumerate(ends) if e]
        open_ = [i for i, e in enumerate(ends) if not e]
        estimate = np.zeros(len(chunks))
        if finished:
            texts = [tokenizer.decode(owners[i][0].chosen + chunks[i], skip_special_tokens=True) for i in finished]
            rows = problems.set_index("problem_id").loc[[owners[i][0].problem_id for i in finished]].reset_index()
            verdicts = grade_completions(kind, texts, rows, ["stop"] * len(finished), card=card, settings=grading)
            estimate[finished] = (verdicts["verdict"] == CORRECT).to_numpy(float)
        shares, spent = _estimate(engine, tokenizer, card, [owners[i][0] for i in open_],
                                  [owners[i][0].chosen + chunks[i] for i in open_], settings.n_estimate, kind,
                                  grading, problems)
        estimate[open_] = shares
        for i, tokens in zip(open_, spent):
            owners[i][0].tokens_spent += int(tokens)
        for b in active:
            mine = [i for i, (owner, _) in enumerate(owners) if owner is b]
            best = max(mine, key=lambda i: estimate[i])  # ties: the first sampled
            for i in mine:
                steps.append({"problem_id": b.problem_id, "step": step, "candidate": owners[i][1],
                              "n_tokens": len(chunks[i]), "finished": ends[i], "estimate": float(estimate[i]),
                              "chosen": i == best, "fresh_estimate": np.nan,
                              "prefix_tokens": len(b.chosen) + len(chunks[i])})
            b.chosen += chunks[best]
            b.steps += 1
            b.finished = ends[best]
        log.info("step %d: %d problems building, %d finished", step, len(active), sum(b.finished for b in builds))
    steps_df = pd.DataFrame(steps, columns=list(STEP_COLUMNS))
    rows = [{"problem_id": b.problem_id, "trace_id": 0, "source": "optimized", "prompt_token_ids": b.prompt,
             "token_ids": b.chosen, "text": tokenizer.decode(b.chosen, skip_special_tokens=True),
             "finish_reason": "stop" if b.finished else "length"} for b in builds]
    traces = _finish(rows, card)
    traces["tokens_spent"] = [b.tokens_spent for b in builds]
    traces["n_steps"] = [b.steps for b in builds]
    return traces, steps_df


def fresh_estimates(engine: Engine, tokenizer: Any, card: dict[str, Any], traces: pd.DataFrame,
                    steps: pd.DataFrame, n: int, kind: str, grading: GradingSettings,
                    problems: pd.DataFrame) -> pd.DataFrame:
    """Re-estimate every chosen, unfinished prefix on new rollouts (the winner's curse)."""
    steps = steps.copy()
    chosen = steps[steps["chosen"] & ~steps["finished"]]
    by_id = traces.set_index("problem_id")
    builds = [_Build(pid, "", list(by_id.loc[pid, "prompt_token_ids"]), []) for pid in chosen["problem_id"]]
    prefixes = [list(by_id.loc[pid, "token_ids"])[:t] for pid, t in zip(chosen["problem_id"], chosen["prefix_tokens"])]
    shares, _ = _estimate(engine, tokenizer, card, builds, prefixes, n, kind, grading, problems)
    steps.loc[chosen.index, "fresh_estimate"] = shares
    finished = steps["chosen"] & steps["finished"]
    steps.loc[finished, "fresh_estimate"] = steps.loc[finished, "estimate"]  # exact: the trace's own verdict
    return steps


def fresh_curves(engine: Engine, tokenizer: Any, card: dict[str, Any], traces: pd.DataFrame,
                 problems: pd.DataFrame, prefixes_cfg: dict[str, Any], n: int, kind: str,
                 grading: GradingSettings) -> pd.DataFrame:
    """The optimized traces' potential curves on the configured cut grid, N fresh samples per
    cut: the same code as the pipeline's cut_prefixes, rollout, grade and potentials stages."""
    from .potentials import compute_potentials

    prefixes = make_prefixes(traces, tokenizer, card, CutSettings.from_config(prefixes_cfg))
    rollouts = run_rollouts(engine, prefixes, n, card["sampling"])
    grades = grade_rollouts(prefixes, rollouts, problems, kind=kind, card=card, settings=grading)
    return compute_potentials(prefixes, grades)


def optimize_job(card_path: str, problems_path: str, traces_out: str, steps_out: str, potentials_out: str, *,
                 settings: dict[str, Any], prefixes: dict[str, Any], n: int, seed: int, grader: str,
                 grading: dict[str, Any], threads: int, config: dict[str, Any]) -> None:
    """Rule optimize_cot: optimized traces, their steps, and their fresh potential curves."""
    from .engine import engine_for
    from .grading import grader_version
    from .models import load_tokenizer
    from .provenance import provenance
    from .tables import read_json, read_table, write_table

    opt = OptimizeSettings.from_config(settings)
    card = read_json(card_path)
    problems = read_table(problems_path).sort_values("problem_id").reset_index(drop=True)
    if opt.limit:
        problems = problems.head(opt.limit)
    grading_settings = GradingSettings.from_config(grading)
    engine = engine_for(card, seed, threads)
    tokenizer = load_tokenizer(card)
    traces, steps = build_traces(engine, tokenizer, card, problems, opt, grader, grading_settings)
    traces = grade_traces(traces, problems, card, grader, grading_settings)
    steps = fresh_estimates(engine, tokenizer, card, traces, steps, opt.n_estimate, grader, grading_settings, problems)
    potentials = fresh_curves(engine, tokenizer, card, traces, problems, prefixes, n, grader, grading_settings)
    facts = dict(model=card["name"], model_identity=card["identity"], seed=seed, optimize=opt.__dict__,
                 grader_version=grader_version(grader))
    facts.update(prompt_version=card["prompt"].get("version"), inputs=[problems_path])
    write_table(traces, traces_out, provenance(config, **facts))
    write_table(steps, steps_out, provenance(config, **facts))
    write_table(potentials, potentials_out, provenance(config, **facts, n=n))
    log.info("%d optimized traces, %.0f%% correct, %.0f tokens generated per problem", len(traces),
             100 * traces["correct"].mean(), traces["tokens_spent"].mean())


# --------------------------------------------------------------------------- comparison


def compare(optimized: pd.DataFrame, steps: pd.DataFrame, optimized_dynamics: pd.DataFrame,
            potentials: pd.DataFrame, traces: pd.DataFrame, dynamics: pd.DataFrame, *, model: str,
            dataset: str) -> pd.DataFrame:
    """Optimized traces vs. the ordinary traces of the same problems vs. best-of-n sampling
    with as many generated tokens as the optimizer spent on each problem.

    Best-of-n uses the same oracle as the optimizer (the gold answer), so it is pass@n of
    ordinary sampling: estimated without bias from the N samples at cut 0 (ordinary answers
    to the bare prompt), with n = the optimizer's tokens / the mean tokens of such an answer
    (capped at N).
    """
    from .rates import pass_at_k
    from .stats import cluster_rate

    ids = sorted(optimized["problem_id"])
    rows = []

    def ci(values) -> tuple[float, float, float]:
        return cluster_rate(np.asarray(values, float))  # one unit per problem: a mean of values in [0, 1]

    ordinary = traces[traces["problem_id"].isin(ids)]
    ordinary_acc = ordinary.groupby("problem_id")["correct"].mean()
    ordinary_mono = dynamics[dynamics["problem_id"].isin(ids)].groupby("problem_id")["monotone"].mean()
    ordinary_tokens = ordinary.groupby("problem_id")["n_tokens"].mean()
    opt = optimized.set_index("problem_id").loc[ids]
    opt_mono = optimized_dynamics.groupby("problem_id")["monotone"].mean().reindex(ids)
    start = potentials[(potentials["problem_id"].isin(ids)) & (potentials["cut_index"] == 0)]
    start = start.groupby("problem_id").agg(n=("n_samples", "sum"), c=("n_correct", "sum"),
                                            tokens=("mean_completion_tokens", "mean")).reindex(ids)
    best_n = np.clip(np.floor(opt["tokens_spent"].to_numpy() / start["tokens"].clip(lower=1).to_numpy()), 1,
                     start["n"].to_numpy()).astype(int)
    best = [pass_at_k(int(n), int(c), int(k)) for n, c, k in zip(start["n"], start["c"], best_n)]
    chosen = steps[steps["chosen"] & steps["fresh_estimate"].notna()]
    selected, fresh = chosen["estimate"].mean(), chosen["fresh_estimate"].mean()

    def row(method: str, acc, mono, tokens: float, **extra: Any) -> dict[str, Any]:
        a = ci(acc)
        m = ci(mono) if mono is not None else (np.nan,) * 3
        return {"model": model, "dataset": dataset, "method": method, "n_problems": len(ids),
                "accuracy": a[0], "accuracy_ci_low": a[1], "accuracy_ci_high": a[2],
                "monotone_rate": m[0], "monotone_rate_ci_low": m[1], "monotone_rate_ci_high": m[2],
                "tokens_per_problem": tokens, **extra}

    rows.append(row("ordinary", ordinary_acc.reindex(ids), ordinary_mono.reindex(ids), float(ordinary_tokens.mean())))
    rows.append(row("optimized", opt["correct"].astype(float), opt_mono, float(opt["tokens_spent"].mean()),
                    selected_potential=selected, fresh_potential=fresh, winners_curse_gap=selected - fresh,
                    mean_steps=float(opt["n_steps"].mean())))
    rows.append(row("best_of_n", best, None, float((best_n * start["tokens"]).mean()), best_of_n=float(best_n.mean())))
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def table_job(runs: list[dict[str, str]], optimized_paths: list[str], steps_paths: list[str],
              optimized_dynamics_paths: list[str], potential_paths: list[str], trace_paths: list[str],
              dynamics_paths: list[str], out: str, *, seed: int, config: dict[str, Any]) -> None:
    """Rule optimized_table: ``results/tables/optimized.csv``."""
    from .provenance import provenance
    from .tables import read_table, write_table

    parts = [compare(*(read_table(p) for p in paths), model=run["model"], dataset=run["dataset"])
             for run, *paths in zip(runs, optimized_paths, steps_paths, optimized_dynamics_paths, potential_paths,
                                    trace_paths, dynamics_paths)]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(TABLE_COLUMNS))
    inputs = [*optimized_paths, *potential_paths, *trace_paths, *dynamics_paths]
    write_table(table, out, provenance(config, seed=seed, runs=runs, inputs=inputs))
