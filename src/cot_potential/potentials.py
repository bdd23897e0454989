"""Potentials: per prefix, the fraction of its N completions that reach the correct answer."""

from __future__ import annotations

import pandas as pd

from .grading import CORRECT, INCORRECT, NO_ANSWER, TIMEOUT
from .stats import clopper_pearson

# Prefix columns too heavy to repeat in the potentials table; every other column of the
# prefix table (cut positions, transfer conditions, ...) is kept as is.
HEAVY_PREFIX_COLUMNS = ("prompt_token_ids", "prefix_text", "max_tokens", "n")


def answer_distribution(grades: pd.DataFrame) -> pd.Series:
    """Per prefix: the extracted answers with their counts and verdicts, most frequent first."""
    answered = grades[grades["answer_key"].notna()]
    counts = (answered.groupby(["prefix_id", "answer_key", "verdict"]).size()
              .rename("count").reset_index()
              .sort_values(["prefix_id", "count", "answer_key"], ascending=[True, False, True]))
    if counts.empty:  # nothing answered anywhere (e.g. an untrained maze model)
        return pd.Series(dtype=object)
    return counts.groupby("prefix_id").apply(
        lambda g: [{"answer": a, "count": int(c), "verdict": v}
                   for a, c, v in zip(g["answer_key"], g["count"], g["verdict"])],
        include_groups=False,
    )


def compute_potentials(prefixes: pd.DataFrame, grades: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """One row per prefix: counts per verdict, truncations, potential and its exact CI."""
    g = grades.assign(
        is_correct=grades["verdict"] == CORRECT,
        is_incorrect=grades["verdict"] == INCORRECT,
        is_no_answer=grades["verdict"] == NO_ANSWER,
        is_timeout=grades["verdict"] == TIMEOUT,
        is_truncated=grades["finish_reason"] == "length",
    )
    counts = g.groupby("prefix_id").agg(
        n_samples=("verdict", "size"),
        n_correct=("is_correct", "sum"),
        n_incorrect=("is_incorrect", "sum"),
        n_no_answer=("is_no_answer", "sum"),
        n_timeout=("is_timeout", "sum"),
        n_truncated=("is_truncated", "sum"),
        mean_completion_tokens=("n_tokens", "mean"),
    )
    missing = set(prefixes["prefix_id"]) - set(counts.index)
    if missing:
        raise ValueError(f"{len(missing)} prefixes have no graded completions, e.g. {sorted(missing)[:3]}")
    keep = [c for c in prefixes.columns if c not in HEAVY_PREFIX_COLUMNS]
    out = prefixes[keep].merge(counts, left_on="prefix_id", right_index=True, how="left")
    for col in ("n_samples", "n_correct", "n_incorrect", "n_no_answer", "n_timeout", "n_truncated"):
        out[col] = out[col].astype("int64")
    out["potential"] = out["n_correct"] / out["n_samples"]
    out["ci_low"], out["ci_high"] = clopper_pearson(out["n_correct"], out["n_samples"], level)
    out["answers"] = out["prefix_id"].map(answer_distribution(grades))
    out["answers"] = out["answers"].apply(lambda a: a if isinstance(a, list) else [])
    order = [c for c in ("problem_id", "trace_id", "cut_index") if c in out] or ["prefix_id"]
    return out.sort_values(order + ["prefix_id"]).reset_index(drop=True)


def potentials_job(prefixes_path: str | list[str], grade_paths: list[str], out: str, *, config: dict,
                   adaptive: dict | None = None) -> None:
    """The potentials rule. ``prefixes_path`` may be several tables (an adaptive run's shards);
    ``adaptive`` (``{"settings", "n"}``) marks an adaptive run (see ``adaptive.adaptive_potentials``)."""
    from .provenance import provenance
    from .tables import read_table, read_tables, write_table

    paths = [prefixes_path] if isinstance(prefixes_path, str) else list(prefixes_path)
    prefixes = read_table(paths[0]) if len(paths) == 1 else read_tables(paths)
    grades = read_tables(grade_paths)
    if adaptive:
        from .adaptive import AdaptiveSettings, adaptive_potentials

        table = adaptive_potentials(prefixes, grades, AdaptiveSettings.from_config(adaptive["settings"], adaptive["n"]))
    else:
        table = compute_potentials(prefixes, grades)
    write_table(table, out, provenance(config, n_prefixes=len(table),
                                       n_samples=int(table["n_samples"].sum()),
                                       inputs=[*paths, *grade_paths]))
