"""Transfer analysis: how much of another CoT does the target need, and is it the content?

"Unsolved by the target alone" is decided on an independent batch (the ``alone`` condition,
>= 4N samples at f = 0): a problem is unsolved if none of those samples is correct. Deciding
it on the same samples that measure f = 0 would make every later fraction look like it
"unlocks" problems by regression to the mean; the ``floor`` condition (fresh samples at
f = 0) shows how much unlocking pure noise produces.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .stats import bootstrap_ratio

TABLE_COLUMNS = (
    "source", "target", "dataset", "condition", "fraction", "source_traces", "leak_filter",
    "n_problems", "n_unsolved_alone", "mean_actual_fraction",
    "mean_potential", "mean_potential_ci_low", "mean_potential_ci_high",
    "mean_potential_unsolved", "mean_potential_unsolved_ci_low", "mean_potential_unsolved_ci_high",
    "unlocked_rate", "unlocked_rate_ci_low", "unlocked_rate_ci_high",
    "answer_leak_rate", "no_answer_rate",
)


def unsolved_alone(potentials: pd.DataFrame) -> pd.Series:
    """Per problem: True if no sample of the independent ``alone`` batch was correct."""
    alone = potentials[potentials["condition"] == "alone"]
    return alone.groupby("problem_id")["n_correct"].sum().eq(0)


def _per_problem(rows: pd.DataFrame) -> pd.DataFrame:
    """Average over a problem's traces first, so every problem weighs the same."""
    return rows.groupby("problem_id").agg(
        potential=("potential", "mean"),
        unlocked=("n_correct", lambda c: float(np.mean(np.asarray(c) > 0))),
        leak=("answer_leak", "mean"),
        no_answer=("n_no_answer", "sum"),
        samples=("n_samples", "sum"),
        actual_fraction=("actual_fraction", "mean"),
    )


def summarize(potentials: pd.DataFrame, *, source: str, target: str, dataset: str,
              seed: int = 0, n_boot: int = 2000) -> pd.DataFrame:
    """The rows of ``results/tables/transfer.csv`` for one (pair, dataset)."""
    unsolved = unsolved_alone(potentials)
    rows: list[dict[str, Any]] = []
    measured = potentials[~potentials["condition"].isin(["alone", "floor"])]
    floor = potentials[potentials["condition"] == "floor"]
    for condition in sorted(measured["condition"].unique()):
        by_condition = measured[measured["condition"] == condition]
        for fraction in [0.0] + sorted(by_condition["fraction"].unique()):
            at = floor if fraction == 0 else by_condition[by_condition["fraction"] == fraction]
            for traces, subset in _trace_subsets(at, fraction):
                for leak_filter in ("all", "no_leak"):
                    chosen = subset if leak_filter == "all" else subset[~subset["answer_leak"].astype(bool)]
                    rows.append({
                        "source": source, "target": target, "dataset": dataset,
                        "condition": condition, "fraction": float(fraction),
                        "source_traces": traces, "leak_filter": leak_filter,
                        **_statistics(chosen, unsolved, seed, n_boot),
                    })
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def _trace_subsets(rows: pd.DataFrame, fraction: float):
    yield "all", rows
    if fraction == 0:
        return  # f = 0 has no placed trace
    correct = rows["trace_correct"].astype("boolean")
    yield "correct", rows[correct.fillna(False).to_numpy()]
    yield "incorrect", rows[(~correct).fillna(False).to_numpy()]


def _statistics(rows: pd.DataFrame, unsolved: pd.Series, seed: int, n_boot: int) -> dict[str, Any]:
    if rows.empty:
        return {"n_problems": 0, "n_unsolved_alone": 0}
    per = _per_problem(rows)
    is_unsolved = unsolved.reindex(per.index).fillna(False).astype(float).to_numpy()
    potential, lo, hi = bootstrap_ratio(per["potential"], seed=seed, n_boot=n_boot)
    pu, pu_lo, pu_hi = bootstrap_ratio(per["potential"] * is_unsolved, is_unsolved, seed=seed, n_boot=n_boot)
    un, un_lo, un_hi = bootstrap_ratio(per["unlocked"] * is_unsolved, is_unsolved, seed=seed, n_boot=n_boot)
    return {
        "n_problems": len(per), "n_unsolved_alone": int(is_unsolved.sum()),
        "mean_actual_fraction": float(per["actual_fraction"].mean()),
        "mean_potential": potential, "mean_potential_ci_low": lo, "mean_potential_ci_high": hi,
        "mean_potential_unsolved": pu, "mean_potential_unsolved_ci_low": pu_lo,
        "mean_potential_unsolved_ci_high": pu_hi,
        "unlocked_rate": un, "unlocked_rate_ci_low": un_lo, "unlocked_rate_ci_high": un_hi,
        "answer_leak_rate": float(per["leak"].mean()),
        "no_answer_rate": float(per["no_answer"].sum() / max(1, per["samples"].sum())),
    }


def table_job(potential_paths: list[str], runs: list[dict[str, str]], out: str, *,
              seed: int, config: dict[str, Any]) -> None:
    """Rule transfer_table: ``results/tables/transfer.csv`` over all pairs and datasets."""
    from .provenance import provenance
    from .tables import read_table, write_table

    parts = [summarize(read_table(path), source=run["source"], target=run["target"],
                       dataset=run["dataset"], seed=seed)
             for path, run in zip(potential_paths, runs)]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(TABLE_COLUMNS))
    write_table(table, out, provenance(config, seed=seed, runs=runs, inputs=list(potential_paths)))
