"""The comparison of maze models' potential curves: monotone curves and spikes per model.

Events are not detected here: the pipeline's dynamics stage (``dynamics.detect_events``,
rule ``events``) already judges every potential curve, the maze models' included, with the
project's definitions and the thresholds of the ``dynamics:`` config (a *spike* is a
significant rise of at least ``spike_min_rise``, a *drop* a significant drop of at least
``tangent_min_drop``, a curve is *monotone* when its potential never falls more than
``monotone_tolerance`` below its running maximum; exact one-sided tests on the counts, Holm
or BH per curve). This module reads its per-trace summaries
(``results/dynamics/{run}/{dataset}.parquet``) and compares the models on the share of
monotone curves and of curves with a spike (95% Clopper-Pearson intervals; two-sided Fisher
exact test against the model trained on correct traces on the same dataset).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..stats import clopper_pearson

CURVE = ["problem_id", "trace_id"]
SHAPE_COLUMNS = ["problem_id", "trace_id", "trace_correct", "n_grid_cuts", "pot_start", "pot_end",
                 "monotone", "n_spikes", "n_drops", "max_spike", "max_drop"]


def curve_shapes(dynamics: pd.DataFrame) -> pd.DataFrame:
    """One row per curve from the dynamics stage's per-trace summary (the columns compared)."""
    missing = set(SHAPE_COLUMNS) - set(dynamics.columns)
    if missing:
        raise ValueError(f"dynamics summary lacks the columns {sorted(missing)}")
    return dynamics[SHAPE_COLUMNS].sort_values(CURVE).reset_index(drop=True)


def _rate(flags: pd.Series) -> tuple[float, float, float]:
    k, n = int(flags.sum()), len(flags)
    low, high = clopper_pearson(k, n)
    return (k / n if n else float("nan")), float(low), float(high)


def compare(shapes: pd.DataFrame) -> pd.DataFrame:
    """Per model x dataset: monotone and spike rates, tested against the correct-trace model
    (the one not post-trained, when a GRPO model of the same run is compared too)."""
    if "post_training" not in shapes:
        shapes = shapes.assign(post_training="none")
    rows = []
    for (model, data, post_training, dataset), group in shapes.groupby(["model", "data", "post_training", "dataset"],
                                                                       sort=True):
        mono, mono_low, mono_high = _rate(group["monotone"])
        spike, spike_low, spike_high = _rate(group["n_spikes"] > 0)
        rows.append({
            "model": model, "data": data, "post_training": post_training, "dataset": dataset,
            "n_curves": len(group),
            "monotone_rate": mono, "monotone_ci_low": mono_low, "monotone_ci_high": mono_high,
            "spike_rate": spike, "spike_ci_low": spike_low, "spike_ci_high": spike_high,
            "spikes_per_curve": float(group["n_spikes"].mean()),
            "drops_per_curve": float(group["n_drops"].mean()),
            "mean_pot_start": float(group["pot_start"].mean()), "mean_pot_end": float(group["pot_end"].mean()),
            "trace_accuracy": float(group["trace_correct"].mean()),
        })
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["p_monotone_vs_correct"] = np.nan
    table["p_spike_vs_correct"] = np.nan
    for dataset, group in shapes.groupby("dataset"):
        reference = group[(group["data"] == "correct") & (group["post_training"] == "none")]
        if reference.empty:
            continue
        ref_model = sorted(reference["model"].unique())[0]
        ref = group[group["model"] == ref_model]
        for model, other in group.groupby("model"):
            if model == ref_model:
                continue
            at = (table["model"] == model) & (table["dataset"] == dataset)
            for column, flag in (("p_monotone_vs_correct", "monotone"), ("p_spike_vs_correct", "spiky")):
                a = other["monotone"] if flag == "monotone" else other["n_spikes"] > 0
                b = ref["monotone"] if flag == "monotone" else ref["n_spikes"] > 0
                counts = [[int(a.sum()), int((~a).sum())], [int(b.sum()), int((~b).sum())]]
                table.loc[at, column] = stats.fisher_exact(counts).pvalue
    return table


def mean_curves(potentials: pd.DataFrame) -> pd.DataFrame:
    """Mean potential per configured cut fraction (for the comparison figure)."""
    key = "nominal_fraction" if potentials["nominal_fraction"].notna().all() else "cut_fraction"
    return (potentials.groupby(key)["potential"].agg(["mean", "count"]).reset_index()
            .rename(columns={key: "fraction", "mean": "potential"}))


def curves_job(runs: list[dict[str, str]], dynamics: list[str], out_table: str, out_shapes: str, *,
               config: dict[str, Any]) -> None:
    """``runs``: one ``{model, data, dataset}`` per dynamics summary (rule events' per-trace table)."""
    from ..provenance import provenance
    from ..tables import read_table, write_table

    shapes = pd.concat([curve_shapes(read_table(p)).assign(**labels) for labels, p in zip(runs, dynamics)],
                       ignore_index=True)
    record = provenance(config, dynamics=config.get("dynamics", {}), runs=runs)
    write_table(shapes, out_shapes, record)
    write_table(compare(shapes), out_table, record)
