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


FSTAR_COLUMNS = ("source", "target", "dataset", "condition", "leak_filter", "problem_id", "f_star", "censored",
                 "n_fractions", "max_fraction")
PAIRED_COLUMNS = ("source", "target", "dataset", "leak_filter", "comparison", "fraction", "n_problems", "both",
                  "source_only", "control_only", "neither", "p_value", "p_holm", "primary")


def _decisions(potentials: pd.DataFrame, *, alpha: float, threshold: float):
    """``(condition, leak_filter, decisions of the problems unsolved alone)`` per condition and
    leak filter (a leaking prefix is dropped: it cannot unlock its problem at that f)."""
    potentials = _with_majority(potentials)
    unsolved, floor = unsolved_alone(potentials), floor_counts(potentials)
    measured = potentials[~potentials["condition"].isin(BASELINE_CONDITIONS)]
    measured = measured[measured["problem_id"].map(unsolved).fillna(False).astype(bool)]
    for condition in sorted(measured["condition"].unique()):
        rows = measured[measured["condition"] == condition]
        problems = sorted(rows["problem_id"].unique())
        for leak_filter in ("all", "no_leak"):
            chosen = rows if leak_filter == "all" else rows[~rows["answer_leak"].astype(bool)]
            yield condition, leak_filter, problems, unlock_decisions(chosen, floor, alpha=alpha, threshold=threshold)


def fstar(potentials: pd.DataFrame, *, alpha: float = 0.05, threshold: float = 0.5) -> pd.DataFrame:
    """Per problem unsolved alone, condition and leak filter: f* = the smallest fraction that
    unlocks it; NaN and ``censored`` when none of its fractions does (f* > the largest)."""
    rows = []
    for condition, leak_filter, problems, decided in _decisions(potentials, alpha=alpha, threshold=threshold):
        by_problem = {pid: group for pid, group in decided.groupby("problem_id")} if len(decided) else {}
        for pid in problems:
            group = by_problem.get(pid, decided.iloc[:0])
            unlocked = group.loc[group["unlocked"].astype(bool), "fraction"]
            rows.append({"condition": condition, "leak_filter": leak_filter, "problem_id": pid,
                         "f_star": float(unlocked.min()) if len(unlocked) else float("nan"),
                         "censored": unlocked.empty, "n_fractions": len(group),
                         "max_fraction": float(group["fraction"].max()) if len(group) else float("nan")})
    return pd.DataFrame(rows, columns=list(FSTAR_COLUMNS[3:]))


def cumulative_unlocked(fstars: pd.DataFrame, fractions, level: float = 0.95) -> pd.DataFrame:
    """Per condition and leak filter: the share of unsolved problems with f* <= f at each f,
    with its exact (Clopper-Pearson) interval over problems."""
    from .stats import clopper_pearson

    rows = []
    for (condition, leak_filter), group in fstars.groupby(["condition", "leak_filter"]):
        for f in sorted(fractions):
            rows.append({"condition": condition, "leak_filter": leak_filter, "fraction": float(f),
                         "n_unsolved": len(group), "unlocked": int((group["f_star"] <= f + 1e-9).sum())})
    out = pd.DataFrame(rows, columns=["condition", "leak_filter", "fraction", "n_unsolved", "unlocked"])
    out["share"] = out["unlocked"] / out["n_unsolved"].where(out["n_unsolved"] > 0)
    out["ci_low"], out["ci_high"] = clopper_pearson(out["unlocked"], out["n_unsolved"], level)
    return out


def paired_tests(potentials: pd.DataFrame, *, alpha: float = 0.05, threshold: float = 0.5,
                 controls=("reasonless", "shuffled", "filler"), primary: tuple[float, str] = (0.2, "reasonless")) -> pd.DataFrame:
    """Source vs each control (reasonless, shuffled, filler) at each f, paired over problems unsolved alone that have both:
    exact McNemar on the per-problem unlock decisions (several traces of a problem pooled into
    one decision); Holm over fractions x comparisons per leak filter. ``primary`` (f, control)
    on prefixes that do not state the answer is the one test fixed in advance: its unadjusted
    p-value is the confirmatory one (a stated answer is not reasoning that transfers)."""
    from .stats import mcnemar_from_counts

    decided = {(c, lf): d for c, lf, _, d in _decisions(potentials, alpha=alpha, threshold=threshold)}
    rows = []
    for (condition, leak_filter), source in decided.items():
        if condition != "source":
            continue
        mine = source.set_index(["problem_id", "fraction"])["unlocked"].astype(bool)
        for control in controls:
            if (control, leak_filter) not in decided:
                continue
            theirs = decided[(control, leak_filter)].set_index(["problem_id", "fraction"])["unlocked"].astype(bool)
            both = pd.concat([mine.rename("s"), theirs.rename("c")], axis=1, join="inner")
            for f, at in both.groupby(level="fraction"):
                b, c = int((at["s"] & ~at["c"]).sum()), int((~at["s"] & at["c"]).sum())
                rows.append({"leak_filter": leak_filter, "comparison": f"source vs {control}", "fraction": float(f),
                             "n_problems": len(at), "both": int((at["s"] & at["c"]).sum()), "source_only": b,
                             "control_only": c, "neither": int((~at["s"] & ~at["c"]).sum()),
                             "primary": bool(np.isclose(f, primary[0]) and control == primary[1]
                                             and leak_filter == "no_leak")})
    out = pd.DataFrame(rows, columns=[c for c in PAIRED_COLUMNS[3:] if c not in ("p_value", "p_holm")])
    out["p_value"] = mcnemar_from_counts(out["source_only"], out["control_only"]) if len(out) else []
    out["p_holm"] = out.groupby("leak_filter")["p_value"].transform(lambda p: holm(p.to_numpy())) if len(out) else []
    return out[list(PAIRED_COLUMNS[3:])]


def unlock_power(potential: float, n: int, *, n_fractions: int, floor_potential: float = 0.0,
                 floor_n: int | None = None, alpha: float = 0.05, threshold: float = 0.5) -> float:
    """Exact probability that one problem whose true potential at f is ``potential`` is called
    unlocked at f: the count beats a floor batch of ``floor_n`` (default ``n``) at Holm's
    first step (alpha / n_fractions, so a lower bound) and reaches the threshold."""
    from scipy import stats as sps

    floor_n = floor_n or n
    k, k0 = np.meshgrid(np.arange(n + 1), np.arange(floor_n + 1), indexing="ij")
    called = (fisher_greater(k, n, k0, floor_n) <= alpha / n_fractions) & (k / n >= threshold)
    weight = sps.binom.pmf(k, n, potential) * sps.binom.pmf(k0, floor_n, floor_potential)
    return float((weight * called).sum())


def paired_power(n_problems: int, p_source: float, p_control: float, alpha: float = 0.05) -> float:
    """Exact power of the two-sided exact McNemar test over ``n_problems`` pairs, when a
    problem is unlocked by the source with probability ``p_source`` and by the control with
    ``p_control``, independently: the sum over every (source-only, control-only) count."""
    from scipy import stats as sps

    from .stats import mcnemar_from_counts

    only_source, only_control = p_source * (1 - p_control), p_control * (1 - p_source)
    b, c = np.meshgrid(np.arange(n_problems + 1), np.arange(n_problems + 1), indexing="ij")
    valid = b + c <= n_problems
    rest = np.where(valid, n_problems - b - c, 0)
    probability = sps.multinomial.pmf(np.stack([b, c, rest], axis=-1), n_problems,
                                      [only_source, only_control, 1 - only_source - only_control])
    return float((np.where(valid, probability, 0) * (mcnemar_from_counts(b, c) <= alpha)).sum())


def table_job(potential_paths: list[str], runs: list[dict[str, str]], out: str, *, seed: int,
              config: dict[str, Any], fstar_out: str | None = None, paired_out: str | None = None,
              alpha: float = 0.05, threshold: float = 0.5, primary: tuple[float, str] = (0.2, "reasonless")) -> None:
    """Rule transfer_table: ``results/tables/transfer.csv`` over all pairs and datasets, and
    beside it the per-problem f* table and the paired comparisons of conditions."""
    from .provenance import provenance
    from .tables import read_table, write_table

    parts, fstars, paired = [], [], []
    for path, run in zip(potential_paths, runs):
        potentials, names = read_table(path), {k: run[k] for k in ("source", "target", "dataset")}
        parts.append(summarize(potentials, **names, alpha=alpha, threshold=threshold, seed=seed))
        fstars.append(fstar(potentials, alpha=alpha, threshold=threshold).assign(**names))
        paired.append(paired_tests(potentials, alpha=alpha, threshold=threshold, primary=primary).assign(**names))
    meta = provenance(config, seed=seed, runs=runs, alpha=alpha, unlock_threshold=threshold,
                      primary={"fraction": primary[0], "control": primary[1]}, inputs=list(potential_paths))
    for frames, columns, path in ((parts, TABLE_COLUMNS, out), (fstars, FSTAR_COLUMNS, fstar_out),
                                  (paired, PAIRED_COLUMNS, paired_out)):
        if path is not None:
            table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(columns))
            write_table(table[list(columns)], path, meta)
