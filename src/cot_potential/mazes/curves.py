"""Monotonicity and spikes of the potential curves of maze models, and their comparison.

A step of a curve is the change between two consecutive cuts ``a -> b``. It is a **drop**
when ``pot(b) <= pot(a) - min_change`` and a one-sided Fisher exact test on the two cuts'
counts ``(n_correct, n_samples)`` rejects "no fall"; a **spike** is the same upwards. The
p-values of one curve (every step, both directions) are Holm-adjusted, so a curve shows a
false event with probability <= ``alpha`` whatever its length. A curve is **monotone** when
it has no drop. Models are compared on the share of monotone curves and of curves with a
spike (95% Clopper-Pearson intervals; two-sided Fisher exact test against the model trained
on correct traces on the same dataset).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..stats import clopper_pearson

CURVE = ["problem_id", "trace_id"]


@dataclass(frozen=True)
class CurveSettings:
    """Config key ``mazes.curves``."""

    alpha: float = 0.05
    min_change: float = 0.25

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> CurveSettings:
        return cls(**(cfg or {}))


def holm(p_values: list[float]) -> np.ndarray:
    """Holm's step-down adjustment (family-wise error control under any dependence)."""
    p = np.asarray(p_values, dtype=float)
    if not len(p):
        return p
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def steps(curve: pd.DataFrame, settings: CurveSettings) -> pd.DataFrame:
    """One row per step of one curve (sorted by cut), with its drop/spike decision."""
    c = curve.sort_values("cut_index")
    k, n, pot = c["n_correct"].to_numpy(), c["n_samples"].to_numpy(), c["potential"].to_numpy()
    rows, p_values = [], []
    for i in range(len(c) - 1):
        table = [[k[i + 1], n[i + 1] - k[i + 1]], [k[i], n[i] - k[i]]]
        p_rise = stats.fisher_exact(table, alternative="greater").pvalue
        p_fall = stats.fisher_exact(table, alternative="less").pvalue
        rows.append({"step": i, "change": pot[i + 1] - pot[i], "p_rise": p_rise, "p_fall": p_fall})
        p_values += [p_rise, p_fall]
    adjusted = holm(p_values)
    out = pd.DataFrame(rows, columns=["step", "change", "p_rise", "p_fall"])
    out["p_rise_holm"], out["p_fall_holm"] = adjusted[0::2], adjusted[1::2]
    out["spike"] = (out["change"] >= settings.min_change) & (out["p_rise_holm"] < settings.alpha)
    out["drop"] = (out["change"] <= -settings.min_change) & (out["p_fall_holm"] < settings.alpha)
    return out


def curve_shapes(potentials: pd.DataFrame, settings: CurveSettings) -> pd.DataFrame:
    """One row per curve: start, end, monotone, spikes and drops."""
    rows = []
    for (pid, tid), curve in potentials.groupby(CURVE, sort=True):
        s = steps(curve, settings)
        ordered = curve.sort_values("cut_index")["potential"]
        rows.append({
            "problem_id": pid, "trace_id": int(tid),
            "trace_correct": bool(curve["trace_correct"].iloc[0]),
            "n_cuts": len(curve), "pot_start": float(ordered.iloc[0]), "pot_end": float(ordered.iloc[-1]),
            "n_spikes": int(s["spike"].sum()), "n_drops": int(s["drop"].sum()),
            "monotone": not bool(s["drop"].any()),
            "max_rise": float(s["change"].max()) if len(s) else 0.0,
            "max_fall": float(-s["change"].min()) if len(s) else 0.0,
        })
    return pd.DataFrame(rows)


def _rate(flags: pd.Series) -> tuple[float, float, float]:
    k, n = int(flags.sum()), len(flags)
    low, high = clopper_pearson(k, n)
    return (k / n if n else float("nan")), float(low), float(high)


def compare(shapes: pd.DataFrame) -> pd.DataFrame:
    """Per model x dataset: monotone and spike rates, tested against the correct-trace model."""
    rows = []
    for (model, data, dataset), group in shapes.groupby(["model", "data", "dataset"], sort=True):
        mono, mono_low, mono_high = _rate(group["monotone"])
        spike, spike_low, spike_high = _rate(group["n_spikes"] > 0)
        rows.append({
            "model": model, "data": data, "dataset": dataset, "n_curves": len(group),
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
        reference = group[group["data"] == "correct"]
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


def curves_job(runs: list[dict[str, str]], potentials: list[str], out_table: str, out_shapes: str, *,
               settings: dict[str, Any], config: dict[str, Any]) -> None:
    """``runs``: one ``{model, data, dataset}`` per potentials table."""
    from ..provenance import provenance
    from ..tables import read_table, write_table

    cfg = CurveSettings.from_config(settings)
    shapes = pd.concat([curve_shapes(read_table(p), cfg).assign(**labels)
                        for labels, p in zip(runs, potentials)], ignore_index=True)
    record = provenance(config, curves=settings, runs=runs)
    write_table(shapes, out_shapes, record)
    write_table(compare(shapes), out_table, record)
