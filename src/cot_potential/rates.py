"""The rates table ``results/tables/dynamics.csv``: how often traces are monotone, have spikes,
insights, jumps, drops, tangents, flaws or lucky guesses, and pass@k with and without lucky
guesses. Insight, jump, tangent and flaw rates come only from labels (``labels.py``).

Monotone is descriptive (``monotone.py``): the rate at ``dynamics.monotone_tolerance`` and at
each of ``dynamics.monotone_tolerances``, each beside its null for this run (the share of
curves called non-monotone when every curve's truth is its own isotonic fit), so a reader
sees how much of "non-monotone" sampling noise alone makes. ``no_significant_drop`` is the
test-based notion (no significant drop of any size).

Every rate is a share of traces with a 95% interval that respects the clustering of traces in
problems (Clopper-Pearson on the effective sample size, ``stats.cluster_clopper_pearson``;
never a point, even at 0 or 1), split by the trace's own correctness. Rates depend
on N and on the cut grid (a finer grid and more samples find more events), so each row
records both, and the report compares with the paper only where they match.
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from .labels import Resolution, no_labels
from .monotone import grid_counts, null_share, null_shortfalls, tolerance_suffix
from .stats import cluster_rate

RATES = ("monotone", "no_significant_drop", "spike", "insight", "jump", "drop", "drop_recovered", "tangent", "flaw",
         "lucky_guess")
# Rates that exist only where the events of their kind are labelled.
LABELLED_RATES = {"insight": "spike", "jump": "spike", "tangent": "drop", "flaw": "drop"}
LABELLED = ("human", "judge", "no_spikes", "no_drops", "mixed")  # label sources whose split counts
KEYS = ("model", "dataset", "scope", "level", "trace_source", "traces")
PROTOCOL = ("n_samples", "cut_grid", "n_grid_cuts", "alpha", "correction", "test", "window",
            "spike_min_rise", "tangent_min_drop", "guess_start_max", "guess_pre_answer_max",
            "monotone_tolerance", "monotone_null_replicates")


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
        "no_significant_drop": traces["no_significant_drop"].astype(bool),
        "max_shortfall": traces["max_shortfall"].astype(float),
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


def _rate(flags: pd.DataFrame, subset: pd.Series, column: str, problems: pd.Index) -> tuple[float, float, float]:
    chosen = flags[subset]
    num = chosen.groupby("problem_id")[column].sum().reindex(problems, fill_value=0)
    den = chosen.groupby("problem_id").size().reindex(problems, fill_value=0)
    return cluster_rate(num.to_numpy(float), den.to_numpy(float))


def monotone_columns(flags: pd.DataFrame, subset: pd.Series, problems: pd.Index, tolerances: tuple[float, ...],
                     null: np.ndarray | None) -> dict[str, float]:
    """Per tolerance: the monotone rate (+CI) and the share called non-monotone under the
    run's null (+ the central 95% of its replicates); ``null`` is (replicates, traces) in the
    order of ``flags``, or None (no null: NaN)."""
    out: dict[str, float] = {}
    for tolerance in tolerances:
        name = f"monotone_rate_{tolerance_suffix(tolerance)}"
        marked = flags.assign(**{name: flags["max_shortfall"] <= tolerance + 1e-12})
        out[name], out[f"{name}_ci_low"], out[f"{name}_ci_high"] = _rate(marked, subset, name, problems)
        null_name = f"non_monotone_null_{tolerance_suffix(tolerance)}"
        shares = null_share(null, tolerance, subset.to_numpy()) if null is not None else (np.nan,) * 3
        out[null_name], out[f"{null_name}_low"], out[f"{null_name}_high"] = shares
    return out


def pass_at_k_table(flags: pd.DataFrame, ks: list[int]) -> dict[str, float]:
    """Mean over problems of unbiased pass@k, and the same with lucky-guess traces counted as
    failures (a correct answer without supporting reasoning is not a solve); NaN where no
    problem has k traces. The interval treats each problem's pass@k as one unit in [0, 1]."""
    out: dict[str, float] = {}
    per = flags.groupby("problem_id").agg(n=("trace_correct", "size"), c=("trace_correct", "sum"),
                                          lucky=("lucky_guess", "sum"))
    for k in ks:
        usable = per[per["n"] >= k]
        for suffix, correct in (("", usable["c"]), ("_no_lucky", usable["c"] - usable["lucky"])):
            values = np.array([pass_at_k(int(n), int(c), k) for n, c in zip(usable["n"], correct)])
            name = f"pass_at_{k}{suffix}"
            if len(values):
                est, lo, hi = cluster_rate(values)
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
              dataset: str, trace_source: str, protocol: dict[str, Any], ks: list[int],
              tolerances: tuple[float, ...] = (), null: np.ndarray | None = None, scope: str = "dataset",
              level: str = "", drops: Resolution | None = None) -> list[dict[str, Any]]:
    """The rows of one run (or of a model pooled over its datasets, ``scope="pooled"``, or of
    one difficulty level, ``scope="level"``): all traces, correct traces, incorrect traces.
    ``resolution``: the spikes' labels, ``drops``: the drops' (none if not given);
    ``null``: the monotone null's shortfalls, (replicates, traces) in the order of ``traces``."""
    drops = drops or no_labels()
    flags = trace_flags(traces, events, resolution.labels, drops.labels)
    problems = pd.Index(sorted(flags["problem_id"].unique()))
    labelled = {"spike": resolution.source in LABELLED, "drop": drops.source in LABELLED}
    rows = []
    for name, subset in (("all", flags["trace_correct"] | True), ("correct", flags["trace_correct"]),
                         ("incorrect", ~flags["trace_correct"])):
        row: dict[str, Any] = {"model": model, "dataset": dataset, "scope": scope, "level": level,
                               "trace_source": trace_source, "traces": name,
                               "n_traces": int(subset.sum()),
                               "n_problems": int(flags.loc[subset, "problem_id"].nunique())}
        for rate in RATES:
            if rate in LABELLED_RATES and not labelled[LABELLED_RATES[rate]]:
                est = lo = hi = float("nan")
            else:
                est, lo, hi = _rate(flags, subset, rate, problems)
            row[f"{rate}_rate"], row[f"{rate}_rate_ci_low"], row[f"{rate}_rate_ci_high"] = est, lo, hi
        row.update(monotone_columns(flags, subset, problems, tuple(tolerances), null))
        row["guess_evaluable_rate"] = float(flags.loc[subset, "guess_evaluable"].mean()) if subset.any() else np.nan
        mine = events.merge(flags.loc[subset, ["problem_id", "trace_id"]])
        row.update(_label_facts(resolution, ""), n_spikes=int((mine["kind"] == "spike").sum()),
                   **_label_facts(drops, "drop"), n_drops=int((mine["kind"] == "drop").sum()))
        if name == "all":
            row.update(pass_at_k_table(flags, ks))
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


def typical_sizes(traces: pd.DataFrame) -> dict[str, int]:
    """The protocol's N and number of grid cuts: the median over the traces (0 without any)."""
    return {column: int(traces[column].median()) if len(traces) else 0 for column in ("n_samples", "n_grid_cuts")}


def load_run(run: dict[str, Any], traces_path: str, events_path: str, potentials_path: str, *,
             human_labels: dict[str, str], judge_paths: dict[str, str], settings: dict[str, Any],
             prefixes: dict[str, Any], seed: int) -> dict[str, Any]:
    """One run's inputs to ``rate_rows``: its traces, events, label resolution, protocol and the
    monotone null (seeded by the run's key, so adding a run changes no other run's null)."""
    from .dynamics import DynamicsSettings
    from .labels import check_label_kinds, read_labels, resolve_labels
    from .tables import read_table

    dyn = DynamicsSettings.from_config(settings)
    traces, events = read_table(traces_path), read_table(events_path)
    human = read_labels(human_labels[run["key"]]) if run["key"] in human_labels else None
    judge = read_table(judge_paths[run["key"]]) if run["key"] in judge_paths else None
    if human is not None:
        check_label_kinds(human, events, f"human labels for {run['key']}")
    gate = dict(min_kappa=settings.get("min_kappa", 0.6), min_overlap=settings.get("min_overlap", 20))
    spikes, drops = (resolve_labels(events.loc[events["kind"] == kind, "event_id"].tolist(), human, judge,
                                    kind=kind, **gate) for kind in ("spike", "drop"))
    sizes = typical_sizes(traces)  # the columns keep PROTOCOL's order
    protocol = {"n_samples": sizes["n_samples"], "cut_grid": cut_grid_label(prefixes),
                "n_grid_cuts": sizes["n_grid_cuts"],
                **{k: getattr(dyn, k) for k in PROTOCOL if hasattr(dyn, k)}}
    curves = grid_counts(read_table(potentials_path), zip(traces["problem_id"], traces["trace_id"]))
    null = null_shortfalls(curves, replicates=dyn.monotone_null_replicates,
                           seed=zlib.crc32(f"{seed}/{run['key']}".encode()))
    return {"run": run, "traces": traces, "events": events, "resolution": spikes, "drops": drops, "protocol": protocol,
            "null": null, "tolerances": dyn.monotone_tolerances}


def pool_resolutions(resolutions: list[Resolution], prefixes: list[str]) -> Resolution:
    """The labels of several runs as one (event ids prefixed like their runs' problems): one
    shared source stays; different sources that all split insight/jump are ``mixed``, else
    ``none``. κ is a per-run agreement: pooled it is not defined (NaN)."""
    labels = {f"{prefix}/{event}": label for r, prefix in zip(resolutions, prefixes) for event, label in r.labels.items()}
    sources = {r.source for r in resolutions}
    source = sources.pop() if len(sources) == 1 else ("mixed" if sources <= set(LABELLED) else "none")
    return replace(resolutions[0], labels=labels if source in LABELLED else {}, source=source,
                   kappa=resolutions[0].kappa if len(resolutions) == 1 else float("nan"),
                   n_human=sum(r.n_human for r in resolutions), n_judge=sum(r.n_judge for r in resolutions),
                   n_overlap=sum(r.n_overlap for r in resolutions))


def pooled_run(loaded: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs of one model as one: every trace weighs the same, problems stay the
    clusters (their ids prefixed by the dataset, so two datasets never share a problem)."""
    prefixes = [one["run"]["dataset"] for one in loaded]

    def prefixed(table: pd.DataFrame, prefix: str) -> pd.DataFrame:
        out = table.assign(problem_id=prefix + "/" + table["problem_id"].astype(str))
        return out.assign(event_id=prefix + "/" + out["event_id"].astype(str)) if "event_id" in out else out

    traces = pd.concat([prefixed(one["traces"], p) for one, p in zip(loaded, prefixes)], ignore_index=True)
    events = pd.concat([prefixed(one["events"], p) for one, p in zip(loaded, prefixes)], ignore_index=True)
    protocol = {**loaded[0]["protocol"], **typical_sizes(traces)}
    run = {**loaded[0]["run"], "dataset": "+".join(prefixes)}
    return {**loaded[0], "run": run, "traces": traces, "events": events, "protocol": protocol,
            "resolution": pool_resolutions([one["resolution"] for one in loaded], prefixes),
            "drops": pool_resolutions([one["drops"] for one in loaded], prefixes),
            "null": np.concatenate([one["null"] for one in loaded], axis=1)}


def level_runs(one: dict[str, Any], levels: pd.Series) -> list[tuple[str, dict[str, Any]]]:
    """One run split by its problems' difficulty level (``levels``: problem_id -> level)."""
    out = []
    level_of = one["traces"]["problem_id"].map(levels)
    for level in sorted(level_of.dropna().unique()):
        chosen = (level_of == level).to_numpy()
        traces = one["traces"][chosen].reset_index(drop=True)
        events = one["events"][one["events"]["problem_id"].isin(set(traces["problem_id"]))]
        out.append((str(level), {**one, "traces": traces, "events": events, "null": one["null"][:, chosen]}))
    return out


def dynamics_table_job(runs: list[dict[str, Any]], trace_paths: list[str], event_paths: list[str],
                       potential_paths: list[str], problem_paths: list[str], out: str, *,
                       human_labels: dict[str, str], judge_paths: dict[str, str], settings: dict[str, Any],
                       prefixes: dict[str, Any], seed: int, config: dict[str, Any]) -> None:
    """Rule dynamics_table: the rates of every run (a dict of labels: model, dataset, trace_source,
    key) from its per-trace, events and potentials tables, then of every model pooled over its
    datasets, then by difficulty level where a run's problems table has a ``level`` column;
    ``human_labels`` and ``judge_paths`` map a run's key to its label files."""
    from .dynamics import DynamicsSettings
    from .provenance import provenance
    from .tables import read_table, write_table

    dyn = DynamicsSettings.from_config(settings)
    ks = list(settings.get("pass_at_k", [1]))
    loaded = [load_run(run, *paths, human_labels=human_labels, judge_paths=judge_paths, settings=settings,
                       prefixes=prefixes, seed=seed)
              for run, paths in zip(runs, zip(trace_paths, event_paths, potential_paths))]

    def rows_of(one: dict[str, Any], **where: str) -> list[dict[str, Any]]:
        run = one["run"]
        rows = rate_rows(one["traces"], one["events"], one["resolution"], model=run["model"], dataset=run["dataset"],
                         trace_source=run["trace_source"], protocol=one["protocol"], ks=ks,
                         tolerances=one["tolerances"], null=one["null"], drops=one["drops"], **where)
        # the model's weights (a hub id or a path) say which model a run is, whatever its config name
        return [{**row, "weights": run.get("weights")} for row in rows]

    rows = [row for one in loaded for row in rows_of(one)]
    by_model: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for one in loaded:
        by_model.setdefault((one["run"]["model"], one["run"]["trace_source"]), []).append(one)
    rows += [row for group in by_model.values() for row in rows_of(pooled_run(group), scope="pooled")]
    for one, problems_path in zip(loaded, problem_paths):
        problems = read_table(problems_path)
        if "level" in problems:
            levels = problems.set_index("problem_id")["level"]
            rows += [row for level, part in level_runs(one, levels) for row in rows_of(part, scope="level", level=level)]
    write_table(pd.DataFrame(rows), out, provenance(config, seed=seed, dynamics=dyn.__dict__, runs=runs,
                                                    inputs=[*trace_paths, *event_paths, *potential_paths,
                                                            *problem_paths]))
