"""Transfer analysis: how much of another CoT does the target need, and is it the content?

"Unsolved by the target alone" is decided on an independent batch (the ``alone`` condition,
>= 4N samples at f = 0): a problem is unsolved if none of those samples is correct. Deciding
it on the same samples that measure f = 0 would make every later fraction look like it
"unlocks" problems by regression to the mean.

A prefix *unlocks* a problem at fraction f when both hold:

- the target's correct count at f is higher than on the ``floor`` batch (N fresh samples at
  f = 0), by a one-sided exact (Fisher) test with Holm's correction over the fractions of the
  problem (one family per problem and condition): unlocking is not noise;
- the potential at f is >= ``unlock_threshold`` (default 0.5: the correct answer holds a
  majority): unlocking means the target now solves it, not that it sometimes guesses it.

"At least one correct" (``any_correct_rate``) and the plurality vote (``majority_rate``) are
kept beside it. A problem with several source traces pools their counts at f (one test per
problem and fraction); ``any_correct`` and ``majority`` average over its traces.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .stats import bootstrap_ratio, fisher_greater, holm

TABLE_COLUMNS = (
    "source", "target", "dataset", "condition", "fraction", "source_traces", "leak_filter",
    "n_problems", "n_unsolved_alone", "mean_actual_fraction",
    "mean_potential", "mean_potential_ci_low", "mean_potential_ci_high",
    "mean_potential_unsolved", "mean_potential_unsolved_ci_low", "mean_potential_unsolved_ci_high",
    "unlocked_rate", "unlocked_rate_ci_low", "unlocked_rate_ci_high",
    "any_correct_rate", "any_correct_rate_ci_low", "any_correct_rate_ci_high",
    "majority_rate", "answer_leak_rate", "no_answer_rate", "truncated_rate",
)
BASELINE_CONDITIONS = ("alone", "floor")


def unsolved_alone(potentials: pd.DataFrame) -> pd.Series:
    """Per problem: True if no sample of the independent ``alone`` batch was correct."""
    alone = potentials[potentials["condition"] == "alone"]
    return alone.groupby("problem_id")["n_correct"].sum().eq(0)


def floor_counts(potentials: pd.DataFrame) -> pd.DataFrame:
    """Per problem: correct and total samples of the ``floor`` batch (the test's reference)."""
    floor = potentials[potentials["condition"] == "floor"]
    return floor.groupby("problem_id").agg(floor_k=("n_correct", "sum"), floor_n=("n_samples", "sum"))


def exact_unlocks(k, n, floor_k, floor_n, alpha: float) -> np.ndarray:
    """The exact-test part of "unlocked", vectorised over problems (rows) x fractions
    (columns): the count at f beats the floor count by a one-sided Fisher test, Holm over
    the fractions of a row. ``n`` NaN (or 0) marks a fraction the problem lacks."""
    n = np.asarray(n, dtype=float)
    present = np.isfinite(n) & (n > 0)
    k = np.where(present, np.nan_to_num(np.asarray(k, dtype=float)), 0)
    floor_k = np.broadcast_to(np.asarray(floor_k, dtype=float).reshape(-1, 1), k.shape)
    floor_n = np.broadcast_to(np.asarray(floor_n, dtype=float).reshape(-1, 1), k.shape)
    p = np.where(present, fisher_greater(k, np.where(present, n, 0), floor_k, floor_n), np.nan)
    return holm(p, axis=1) <= alpha


def unlock_decisions(rows: pd.DataFrame, floor: pd.DataFrame, *, alpha: float, threshold: float) -> pd.DataFrame:
    """Per (problem, fraction) of one condition's rows: pooled counts, the exact test against
    the floor batch (Holm over the problem's fractions), the threshold, and ``unlocked``."""
    per = rows.groupby(["problem_id", "fraction"]).agg(
        k=("n_correct", "sum"), n=("n_samples", "sum"),
        any_correct=("n_correct", lambda c: float(np.mean(np.asarray(c) > 0))),
        majority=("majority_correct", "mean"),
    ).reset_index()
    if per.empty:
        return per.assign(potential=[], significant=[], unlocked=[])
    k = per.pivot(index="problem_id", columns="fraction", values="k")
    n = per.pivot(index="problem_id", columns="fraction", values="n")
    ref = floor.reindex(k.index).fillna(0)
    significant = pd.DataFrame(exact_unlocks(k.to_numpy(), n.to_numpy(), ref["floor_k"], ref["floor_n"], alpha),
                               index=k.index, columns=k.columns).stack().rename("significant")
    per = per.join(significant, on=["problem_id", "fraction"])
    per["potential"] = per["k"] / per["n"]
    per["unlocked"] = per["significant"].astype(bool) & (per["potential"] >= threshold)
    return per


def majority_correct(answers) -> bool:
    """The plurality answer of a prefix's samples is correct (``answers`` is the potentials
    table's distribution, most frequent first; ties keep its order)."""
    answers = list(answers) if answers is not None else []
    return bool(answers) and answers[0].get("verdict") == "correct"


def _with_majority(potentials: pd.DataFrame) -> pd.DataFrame:
    if "answers" not in potentials:
        return potentials.assign(majority_correct=np.nan)
    return potentials.assign(majority_correct=[float(majority_correct(a)) for a in potentials["answers"]])


def summarize(potentials: pd.DataFrame, *, source: str, target: str, dataset: str, alpha: float = 0.05,
              threshold: float = 0.5, seed: int = 0, n_boot: int = 2000) -> pd.DataFrame:
    """The rows of ``results/tables/transfer.csv`` for one (pair, dataset)."""
    potentials = _with_majority(potentials)
    unsolved, floor = unsolved_alone(potentials), floor_counts(potentials)
    floor_rows = potentials[potentials["condition"] == "floor"]
    measured = potentials[~potentials["condition"].isin(BASELINE_CONDITIONS)]
    rows: list[dict[str, Any]] = []
    for condition in sorted(measured["condition"].unique()):
        for traces, subset in _trace_subsets(measured[measured["condition"] == condition]):
            for leak_filter in ("all", "no_leak"):
                chosen = subset if leak_filter == "all" else subset[~subset["answer_leak"].astype(bool)]
                decided = unlock_decisions(chosen, floor, alpha=alpha, threshold=threshold)
                fractions = sorted(subset["fraction"].unique())
                if traces == "all":  # f = 0: the floor batch, the reference of the test
                    fractions = [0.0, *fractions]
                for fraction in fractions:
                    at = floor_rows if fraction == 0 else chosen[chosen["fraction"] == fraction]
                    verdicts = None if fraction == 0 else decided[decided["fraction"] == fraction]
                    rows.append({"source": source, "target": target, "dataset": dataset,
                                 "condition": condition, "fraction": float(fraction),
                                 "source_traces": traces, "leak_filter": leak_filter,
                                 **_statistics(at, verdicts, unsolved, seed, n_boot)})
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def _trace_subsets(rows: pd.DataFrame):
    yield "all", rows
    correct = rows["trace_correct"].astype("boolean")
    yield "correct", rows[correct.fillna(False).to_numpy()]
    yield "incorrect", rows[(~correct).fillna(False).to_numpy()]


def _statistics(rows: pd.DataFrame, verdicts: pd.DataFrame | None, unsolved: pd.Series, seed: int,
                n_boot: int) -> dict[str, Any]:
    if rows.empty:
        return {"n_problems": 0, "n_unsolved_alone": 0}
    per = rows.groupby("problem_id").agg(
        potential=("potential", "mean"), leak=("answer_leak", "mean"),
        any_correct=("n_correct", lambda c: float(np.mean(np.asarray(c) > 0))),
        majority=("majority_correct", "mean"), no_answer=("n_no_answer", "sum"),
        truncated=("n_truncated", "sum"),
        samples=("n_samples", "sum"), actual_fraction=("actual_fraction", "mean"))
    is_unsolved = unsolved.reindex(per.index).fillna(False).astype(float).to_numpy()
    # f = 0 (no verdicts): nothing is placed, so nothing is unlocked.
    unlocked = (verdicts.set_index("problem_id")["unlocked"].reindex(per.index).fillna(False).astype(float)
                .to_numpy() if verdicts is not None else np.zeros(len(per)))

    def among_unsolved(values):
        return bootstrap_ratio(np.asarray(values, dtype=float) * is_unsolved, is_unsolved, seed=seed, n_boot=n_boot)

    potential = bootstrap_ratio(per["potential"], seed=seed, n_boot=n_boot)
    pu, un, anyc = among_unsolved(per["potential"]), among_unsolved(unlocked), among_unsolved(per["any_correct"])
    majority = per["majority"].fillna(0).to_numpy() * is_unsolved
    return {
        "n_problems": len(per), "n_unsolved_alone": int(is_unsolved.sum()),
        "mean_actual_fraction": float(per["actual_fraction"].mean()),
        **_named("mean_potential", potential), **_named("mean_potential_unsolved", pu),
        **_named("unlocked_rate", un), **_named("any_correct_rate", anyc),
        "majority_rate": float(majority.sum() / is_unsolved.sum()) if is_unsolved.sum() else float("nan"),
        "answer_leak_rate": float(per["leak"].mean()),
        "no_answer_rate": float(per["no_answer"].sum() / max(1, per["samples"].sum())),
        "truncated_rate": float(per["truncated"].sum() / max(1, per["samples"].sum())),
    }


def _named(name: str, estimate: tuple[float, float, float]) -> dict[str, float]:
    return {name: estimate[0], f"{name}_ci_low": estimate[1], f"{name}_ci_high": estimate[2]}


def table_job(potential_paths: list[str], runs: list[dict[str, str]], out: str, *,
              seed: int, config: dict[str, Any], alpha: float = 0.05, threshold: float = 0.5) -> None:
    """Rule transfer_table: ``results/tables/transfer.csv`` over all pairs and datasets."""
    from .provenance import provenance
    from .tables import read_table, write_table

    parts = [summarize(read_table(path), source=run["source"], target=run["target"],
                       dataset=run["dataset"], alpha=alpha, threshold=threshold, seed=seed)
             for path, run in zip(potential_paths, runs)]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(TABLE_COLUMNS))
    write_table(table, out, provenance(config, seed=seed, runs=runs, alpha=alpha, unlock_threshold=threshold,
                                       inputs=list(potential_paths)))
