"""The rates table ``results/tables/dynamics.csv``: how often traces are monotone, have spikes,
insights, jumps, drops, tangents, flaws or lucky guesses, and pass@k with and without lucky
guesses. Insight, jump, tangent and flaw rates come only from labels (``labels.py``).

Every rate is a share of traces with a 95% percentile-bootstrap interval over *problems*
(traces of one problem are correlated), split by the trace's own correctness. Rates depend
on N and on the cut grid (a finer grid and more samples find more events), so each row
records both, and the report compares with the paper only where they match.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .labels import Resolution, no_labels
from .stats import bootstrap_ratio

RATES = ("monotone", "spike", "insight", "jump", "drop", "drop_recovered", "tangent", "flaw", "lucky_guess")
# Rates that exist only where the events of their kind are labelled.
LABELLED_RATES = {"insight": "spike", "jump": "spike", "tangent": "drop", "flaw": "drop"}
LABELLED = ("human", "judge", "no_spikes", "no_drops")
KEYS = ("model", "dataset", "trace_source", "traces")
PROTOCOL = ("n_samples", "cut_grid", "n_grid_cuts", "alpha", "correction", "test", "window",
            "spike_min_rise", "tangent_min_drop", "guess_start_max", "guess_pre_answer_max")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021) from n samples with c correct: 1 - C(n-c, k) / C(n, k)."""
    if k > n:
        return float("nan")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def trace_flags(traces: pd.DataFrame, events: pd.DataFrame, labels: dict[str, str],
                drop_labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Per trace, the property behind each rate (True/False). ``labels``: spike labels,
    ``drop_labels``: drop labels (event id -> label)."""
    key = ["problem_id", "trace_id"]
    spikes = events[events["kind"] == "spike"].assign(label=lambda e: e["event_id"].map(labels))
    drops = events[events["kind"] == "drop"].assign(label=lambda e: e["event_id"].map(drop_labels or {}))

    def has(rows: pd.DataFrame) -> pd.Series:
        found = set(map(tuple, rows[key].itertuples(index=False)))
        return pd.Series([k in found for k in map(tuple, traces[key].itertuples(index=False))], index=traces.index)

    return pd.DataFrame({
        "problem_id": traces["problem_id"], "trace_id": traces["trace_id"],
        "trace_correct": traces["trace_correct"].astype(bool),
        "monotone": traces["monotone"].astype(bool),
        "spike": traces["n_spikes"] > 0,
        "insight": has(spikes[spikes["label"] == "insight"]),
        "jump": has(spikes[spikes["label"] == "jump"]),
        "drop": traces["n_drops"] > 0,
        "drop_recovered": has(drops[drops["recovered"].fillna(False).astype(bool)]),
        "tangent": has(drops[drops["label"] == "tangent"]),
        "flaw": has(drops[drops["label"] == "flaw"]),
        "lucky_guess": traces["lucky_guess"].astype(bool),
        "guess_evaluable": traces["guess_evaluable"].astype(bool),
    })


def _rate(flags: pd.DataFrame, subset: pd.Series, column: str, problems: pd.Index, seed: int,
          n_boot: int) -> tuple[float, float, float]:
    chosen = flags[subset]
    num = chosen.groupby("problem_id")[column].sum().reindex(problems, fill_value=0)
    den = chosen.groupby("problem_id").size().reindex(problems, fill_value=0)
    return bootstrap_ratio(num.to_numpy(float), den.to_numpy(float), seed=seed, n_boot=n_boot)


def pass_at_k_table(flags: pd.DataFrame, ks: list[int], seed: int, n_boot: int) -> dict[str, float]:
    """Mean over problems of unbiased pass@k, and the same with lucky-guess traces counted as
    failures (a correct answer without supporting reasoning is not a solve); NaN where no
    problem has k traces."""
    out: dict[str, float] = {}
    per = flags.groupby("problem_id").agg(n=("trace_correct", "size"), c=("trace_correct", "sum"),
                                          lucky=("lucky_guess", "sum"))
    for k in ks:
        usable = per[per["n"] >= k]
        for suffix, correct in (("", usable["c"]), ("_no_lucky", usable["c"] - usable["lucky"])):
            values = np.array([pass_at_k(int(n), int(c), k) for n, c in zip(usable["n"], correct)])
            name = f"pass_at_{k}{suffix}"
            if len(values):
                est, lo, hi = bootstrap_ratio(values, seed=seed, n_boot=n_boot)
            else:
                est = lo = hi = float("nan")
            out[name], out[f"{name}_ci_low"], out[f"{name}_ci_high"] = est, lo, hi
        out[f"pass_at_{k}_problems"] = len(usable)
    return out


def _label_facts(resolution: Resolution, prefix: str) -> dict[str, Any]:
    """The label columns of one kind of event: ``label_source, kappa, n_human_labels, ...``
    for spikes (prefix ``""``), ``drop_label_source, drop_kappa, n_human_drop_labels, ...``."""
    infix = f"{prefix}_" if prefix else ""
    return {f"{infix}label_source": resolution.source, f"{infix}kappa": resolution.kappa,
            f"n_human_{infix}labels": resolution.n_human, f"n_judge_{infix}labels": resolution.n_judge,
            f"n_{infix}label_overlap": resolution.n_overlap}


def rate_rows(traces: pd.DataFrame, events: pd.DataFrame, resolution: Resolution, *, model: str,
              dataset: str, trace_source: str, protocol: dict[str, Any], ks: list[int], seed: int,
              n_boot: int = 2000, drops: Resolution | None = None) -> list[dict[str, Any]]:
    """The rows of one run: all traces, correct traces, incorrect traces. ``resolution``: the
    spikes' labels, ``drops``: the drops' (none if not given)."""
    drops = drops or no_labels()
    flags = trace_flags(traces, events, resolution.labels, drops.labels)
    problems = pd.Index(sorted(flags["problem_id"].unique()))
    labelled = {"spike": resolution.source in LABELLED, "drop": drops.source in LABELLED}
    rows = []
    for name, subset in (("all", flags["trace_correct"] | True), ("correct", flags["trace_correct"]),
                         ("incorrect", ~flags["trace_correct"])):
        row: dict[str, Any] = {"model": model, "dataset": dataset, "trace_source": trace_source, "traces": name,
                               "n_traces": int(subset.sum()),
                               "n_problems": int(flags.loc[subset, "problem_id"].nunique())}
        for rate in RATES:
            if rate in LABELLED_RATES and not labelled[LABELLED_RATES[rate]]:
                est = lo = hi = float("nan")
            else:
                est, lo, hi = _rate(flags, subset, rate, problems, seed, n_boot)
            row[f"{rate}_rate"], row[f"{rate}_rate_ci_low"], row[f"{rate}_rate_ci_high"] = est, lo, hi
        row["guess_evaluable_rate"] = float(flags.loc[subset, "guess_evaluable"].mean()) if subset.any() else np.nan
        mine = events.merge(flags.loc[subset, ["problem_id", "trace_id"]])
        row.update(_label_facts(resolution, ""), n_spikes=int((mine["kind"] == "spike").sum()),
                   **_label_facts(drops, "drop"), n_drops=int((mine["kind"] == "drop").sum()))
        if name == "all":
            row.update(pass_at_k_table(flags, ks, seed, n_boot))
        row.update(protocol)
        rows.append(row)
    return rows


def cut_grid_label(prefixes: dict[str, Any]) -> str:
    """A short description of the configured cut grid, e.g. ``fraction:0-1/0.1 (11)``."""
    mode = prefixes.get("mode", "fraction")
    if mode == "fraction":
        f = sorted(set(float(x) for x in prefixes.get("fractions", [])))
        steps = np.diff(f)
        if len(steps) and np.allclose(steps, steps[0]):
            return f"fraction:{f[0]:g}-{f[-1]:g}/{steps[0]:g} ({len(f)})"
        return "fraction:" + ",".join(f"{x:g}" for x in f) + f" ({len(f)})"
    if mode == "stride":
        return f"stride:{prefixes.get('stride', 32)}"
    return f"boundary:{prefixes.get('max_cuts')}"


def dynamics_table_job(runs: list[dict[str, Any]], trace_paths: list[str], event_paths: list[str],
                       out: str, *, human_labels: dict[str, str], judge_paths: dict[str, str],
                       settings: dict[str, Any], prefixes: dict[str, Any], seed: int,
                       config: dict[str, Any]) -> None:
    """Rule dynamics_table: the rates of every run (a dict of labels: model, dataset, trace_source,
    key) from its per-trace and events tables; ``human_labels`` and ``judge_paths`` map a run's
    key to its label files."""
    from .dynamics import DynamicsSettings
    from .labels import check_label_kinds, read_labels, resolve_labels
    from .provenance import provenance
    from .tables import read_table, write_table

    dyn = DynamicsSettings.from_config(settings)
    rows = []
    for run, traces_path, events_path in zip(runs, trace_paths, event_paths):
        traces, events = read_table(traces_path), read_table(events_path)
        human = read_labels(human_labels[run["key"]]) if run["key"] in human_labels else None
        judge = read_table(judge_paths[run["key"]]) if run["key"] in judge_paths else None
        if human is not None:
            check_label_kinds(human, events, f"human labels for {run['key']}")
        gate = dict(min_kappa=settings.get("min_kappa", 0.6), min_overlap=settings.get("min_overlap", 20))
        spikes, drops = (resolve_labels(events.loc[events["kind"] == kind, "event_id"].tolist(), human, judge,
                                        kind=kind, **gate) for kind in ("spike", "drop"))
        protocol = {"n_samples": int(traces["n_samples"].median()) if len(traces) else 0,
                    "cut_grid": cut_grid_label(prefixes),
                    "n_grid_cuts": int(traces["n_grid_cuts"].median()) if len(traces) else 0,
                    **{k: getattr(dyn, k) for k in PROTOCOL if hasattr(dyn, k)}}
        new = rate_rows(traces, events, spikes, model=run["model"], dataset=run["dataset"],
                        trace_source=run["trace_source"], protocol=protocol,
                        ks=list(settings.get("pass_at_k", [1])), seed=seed, drops=drops)
        # the model's weights (a hub id or a path) say which model a run is, whatever its config name
        rows.extend({**r, "weights": run.get("weights")} for r in new)
    table = pd.DataFrame(rows)
    write_table(table, out, provenance(config, seed=seed, dynamics=dyn.__dict__, runs=runs,
                                       inputs=[*trace_paths, *event_paths]))
