"""Trace dynamics: spikes, drops, monotone traces and lucky guesses, as tests on the counts.

Every change of a potential curve is judged on its counts, not on eyeballed intervals. For
each window of 1..``window`` steps between the curve's *grid* cuts (the configured cut grid;
the extra answer cuts serve the lucky-guess test only, so rates stay comparable by grid), a
rise and a drop are each tested with an exact one-sided two-proportion test on
``(n_correct, n_samples)`` at both ends (Fisher's, or Boschloo's which has more power and
costs ~0.1 s per test). All tests of one curve form one family, adjusted with Holm (the
family-wise error per curve stays <= ``alpha`` under any dependence) or Benjamini-Hochberg.

- **spike** (insight or jump): a significant rise whose estimate is >= ``spike_min_rise``;
  overlapping or touching significant windows merge into one event;
- **drop** (tangent, flaw or other, once labelled): a significant drop >= ``tangent_min_drop``;
  *recovered* if a later grid cut regains at least ``recovery_share`` of the drop;
- **recovery**: a significant rise that starts after a drop and ends below the drop's
  starting level + ``spike_min_rise``: the trace coming back, not a new insight (not a spike);
- **monotone trace** (descriptive, ``monotone.py``): the potential never falls more than
  ``monotone_tolerance`` below its running maximum over the grid cuts (``max_shortfall``);
- **no significant drop**: no significant drop anywhere, of any size (the earlier notion of
  monotone, kept as its own column);
- **lucky guess**: a correct trace whose problem is not easy on its own (pot(0)'s CI upper
  bound <= ``guess_start_max``) and whose potential just before the answer is first stated
  (the answer cut at offset 0) has a CI upper bound <= ``guess_pre_answer_max``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .monotone import shortfall

log = logging.getLogger(__name__)

CURVE = ["problem_id", "trace_id"]
EVENT_COLUMNS = (
    "event_id", "problem_id", "trace_id", "kind", "cut_start", "cut_end", "fraction_start",
    "fraction_end", "potential_before", "potential_after", "size", "p_value", "recovered",
    "recovery_cut", "at_answer", "trace_correct", "char_start", "char_end", "span_text",
)
TRACE_COLUMNS = (
    "problem_id", "trace_id", "trace_correct", "n_grid_cuts", "n_samples", "pot_start", "pot_end",
    "monotone", "n_spikes", "n_drops", "n_drops_recovered", "max_spike", "max_drop",
    "guess_evaluable", "lucky_guess", "pre_answer_potential", "pre_answer_ci_high", "n_tests",
    "max_shortfall", "no_significant_drop",
)
EVENT_KINDS = ("spike", "drop", "recovery", "lucky_guess")


@dataclass(frozen=True)
class DynamicsSettings:
    """Config key ``dynamics`` (the detection thresholds; see config/README.md)."""

    alpha: float = 0.05
    correction: str = "holm"  # holm | bh
    test: str = "fisher"  # fisher | boschloo
    window: int = 2  # w: a rise or drop may span at most this many grid steps
    spike_min_rise: float = 0.2  # delta_up
    tangent_min_drop: float = 0.2  # delta_down: the smallest drop event (the name predates drop labels)
    recovery_share: float = 0.5
    guess_start_max: float = 0.5
    guess_pre_answer_max: float = 0.35  # tau
    monotone_tolerance: float = 0.1  # a monotone curve never falls more than this below its running maximum
    monotone_tolerances: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2)  # the rates table reports each
    monotone_null_replicates: int = 200  # binomial redraws of every curve for the monotone null

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> DynamicsSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (cfg or {}).items() if k in known})

    def __post_init__(self) -> None:
        object.__setattr__(self, "monotone_tolerances", tuple(float(t) for t in self.monotone_tolerances))
        if self.correction not in ("holm", "bh"):
            raise ValueError(f"dynamics.correction must be holm | bh, got {self.correction!r}")
        if self.test not in ("fisher", "boschloo"):
            raise ValueError(f"dynamics.test must be fisher | boschloo, got {self.test!r}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"dynamics.alpha must lie in (0, 1), got {self.alpha}")
        if self.window < 1:
            raise ValueError(f"dynamics.window must be >= 1, got {self.window}")
        if not all(0 <= t <= 1 for t in (self.monotone_tolerance, *self.monotone_tolerances)):
            raise ValueError("dynamics.monotone_tolerance(s) must lie in [0, 1]")


# --------------------------------------------------------------------------- the tests


def rise_pvalues(k_before, n_before, k_after, n_after, test: str = "fisher") -> np.ndarray:
    """One-sided exact p-values of H0 "the potential did not rise" (after <= before)."""
    k1, n1, k2, n2 = (np.asarray(x, dtype=np.int64) for x in (k_before, n_before, k_after, n_after))
    if test == "fisher":
        # Conditional on the k1 + k2 successes, k2 is hypergeometric: P(K2 >= k2).
        return np.clip(stats.hypergeom.sf(k2 - 1, n1 + n2, k1 + k2, n2), 0.0, 1.0)
    if test == "boschloo":
        cache: dict[tuple[int, ...], float] = {}
        out = np.empty(len(k1))
        for i, key in enumerate(zip(k1.tolist(), n1.tolist(), k2.tolist(), n2.tolist())):
            if key not in cache:
                a, m, b, n = key
                table = [[a, b], [m - a, n - b]]  # columns are the two cuts
                cache[key] = float(stats.boschloo_exact(table, alternative="less").pvalue)
            out[i] = cache[key]
        return np.clip(np.nan_to_num(out, nan=1.0), 0.0, 1.0)
    raise ValueError(f"unknown test {test!r}")


def drop_pvalues(k_before, n_before, k_after, n_after, test: str = "fisher") -> np.ndarray:
    """One-sided exact p-values of H0 "the potential did not drop": the rise test mirrored."""
    n1, n2 = np.asarray(n_before), np.asarray(n_after)
    return rise_pvalues(n1 - np.asarray(k_before), n1, n2 - np.asarray(k_after), n2, test)


def adjust(pvalues, method: str = "holm") -> np.ndarray:
    """Multiplicity-adjusted p-values of one family (Holm step-down or Benjamini-Hochberg)."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if method == "holm":
        adjusted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * ranked))
    elif method == "bh":
        adjusted = np.minimum.accumulate((m / np.arange(1, m + 1) * ranked)[::-1])[::-1]
        adjusted = np.minimum(1.0, adjusted)
    else:
        raise ValueError(f"unknown correction {method!r}")
    out = np.empty(m)
    out[order] = adjusted
    return out


def window_tests(potentials: pd.DataFrame, settings: DynamicsSettings) -> pd.DataFrame:
    """Every (rise | drop) test of every curve: one row per window between grid cuts.

    Columns: the curve keys, ``pos_start``/``pos_end`` (positions among the grid cuts),
    ``cut_start``/``cut_end``, ``change`` (estimated), ``direction``, ``p``, ``p_adj``.
    """
    grid = _grid(potentials)
    grid = grid.assign(pos=grid.groupby(CURVE).cumcount())
    pairs = []
    for lag in range(1, settings.window + 1):
        later = grid.groupby(CURVE)[["cut_index", "n_correct", "n_samples"]].shift(-lag)
        ok = later["cut_index"].notna().to_numpy()
        pairs.append(pd.DataFrame({
            "problem_id": grid["problem_id"].to_numpy()[ok], "trace_id": grid["trace_id"].to_numpy()[ok],
            "pos_start": grid["pos"].to_numpy()[ok], "pos_end": grid["pos"].to_numpy()[ok] + lag,
            "cut_start": grid["cut_index"].to_numpy()[ok],
            "cut_end": later["cut_index"].to_numpy()[ok].astype("int64"),
            "k1": grid["n_correct"].to_numpy()[ok], "n1": grid["n_samples"].to_numpy()[ok],
            "k2": later["n_correct"].to_numpy()[ok].astype("int64"),
            "n2": later["n_samples"].to_numpy()[ok].astype("int64"),
        }))
    columns = [*CURVE, "pos_start", "pos_end", "cut_start", "cut_end", "change", "direction", "p", "p_adj"]
    tests = pd.concat(pairs, ignore_index=True)
    if tests.empty:
        return pd.DataFrame(columns=columns)
    tests["change"] = tests["k2"] / tests["n2"] - tests["k1"] / tests["n1"]
    args = (tests["k1"], tests["n1"], tests["k2"], tests["n2"])
    rises = tests.assign(direction="rise", p=rise_pvalues(*args, test=settings.test))
    drops = tests.assign(direction="drop", p=drop_pvalues(*args, test=settings.test))
    both = pd.concat([rises, drops], ignore_index=True)
    both["p_adj"] = adjust_by_group(both, settings.correction)
    return both.sort_values([*CURVE, "direction", "pos_start", "pos_end"])[columns].reset_index(drop=True)


def adjust_by_group(tests: pd.DataFrame, method: str) -> np.ndarray:
    """``adjust`` applied to the tests of each curve at once (vectorised over curves)."""
    ranked = tests[[*CURVE, "p"]].sort_values([*CURVE, "p"], kind="stable")
    groups = ranked.groupby(CURVE, sort=False)
    m = groups["p"].transform("size").to_numpy()
    rank = groups.cumcount().to_numpy()  # 0-based
    p = ranked["p"].to_numpy()
    if method == "holm":
        raw = pd.Series(np.minimum(1.0, (m - rank) * p), index=ranked.index)
        adjusted = raw.groupby([ranked[c] for c in CURVE], sort=False).cummax()
    elif method == "bh":
        raw = pd.Series(m / (rank + 1) * p, index=ranked.index)[::-1]
        keys = [ranked[c][::-1] for c in CURVE]
        adjusted = np.minimum(1.0, raw.groupby(keys, sort=False).cummin())[::-1]
    else:
        raise ValueError(f"unknown correction {method!r}")
    return adjusted.reindex(tests.index).to_numpy()


def _grid(potentials: pd.DataFrame) -> pd.DataFrame:
    """The grid cuts of every curve, in order (tables without ``grid_cut``: every cut)."""
    rows = potentials[potentials["grid_cut"].astype(bool)] if "grid_cut" in potentials else potentials
    return rows.sort_values([*CURVE, "cut_index"]).reset_index(drop=True)


# --------------------------------------------------------------------------- events of a curve


class _Curve:
    """The columns of one curve's cuts as arrays (in cut order), and its grid positions."""

    OPTIONAL = {"grid_cut": True, "answer_offset": -1, "char_offset": -1, "cut_token": -1,
                "answer_token": -1, "trace_correct": False}

    def __init__(self, columns: dict[str, np.ndarray]):
        self.c = columns
        self.grid = np.nonzero(columns["grid_cut"].astype(bool))[0]
        self.pot = columns["potential"][self.grid]

    def __len__(self) -> int:
        return len(self.c["cut_index"])

    def at(self, name: str, i: int) -> Any:
        return self.c[name][i]


def _merge(windows: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    """Overlapping or touching windows (grid positions) merged: ``(start, end, min p_adj)``."""
    merged: list[list[float]] = []
    for a, b, p in sorted(windows):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
            merged[-1][2] = min(merged[-1][2], p)
        else:
            merged.append([a, b, p])
    return [(int(a), int(b), float(p)) for a, b, p in merged]


def _extremes(pot: np.ndarray, a: int, b: int, rising: bool, tol: float) -> tuple[int, int]:
    """The tightest span of merged windows ``[a, b]`` that carries the change: from the last
    cut within ``tol`` of the low point to the first cut within ``tol`` of the peak (mirrored
    for drops), so an event reports nearly its full size over the steps that made it."""
    seg = pot[a:b + 1] if rising else -pot[a:b + 1]
    end = int(np.nonzero(seg >= seg.max() - tol)[0][0])
    before = seg[: end + 1]
    start = int(np.nonzero(before <= before.min() + tol)[0][-1])
    if start == end:  # the whole change lies within tol: keep the extremes themselves
        end, start = int(np.argmax(seg)), int(np.argmin(seg[: int(np.argmax(seg)) + 1]))
    return a + start, a + end


def _curve_events(curve: _Curve, significant: list[tuple[str, int, int, float, float]],
                  any_drop: bool, n_tests: int, settings: DynamicsSettings,
                  text: str | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Events and summary of one curve from its significant tests ``(direction, pos_start,
    pos_end, change, p_adj)``."""
    pot, grid = curve.pot, curve.grid
    correct = bool(curve.at("trace_correct", 0))
    answer_token = int(curve.at("answer_token", 0))
    rises = [(a, b, p) for d, a, b, ch, p in significant if d == "rise" and ch >= settings.spike_min_rise - 1e-12]
    drops = [(a, b, p) for d, a, b, ch, p in significant if d == "drop" and -ch >= settings.tangent_min_drop - 1e-12]
    events, drop_spans = [], []
    for a, b, p in _merge(drops):
        a, b = _extremes(pot, a, b, rising=False, tol=settings.tangent_min_drop / 2)
        trough = float(pot[b])
        need = trough + settings.recovery_share * (pot[a] - trough)
        hit = np.nonzero(pot[b + 1:] >= need - 1e-12)[0]
        recovered = bool(len(hit))
        drop_spans.append((a, b, float(pot[a])))
        events.append(_event_row(curve, "drop", grid[a], grid[b], p, text, correct, answer_token,
                                 recovered=recovered,
                                 recovery_cut=int(curve.at("cut_index", grid[b + 1 + hit[0]])) if recovered else -1))
    for a, b, p in _merge(rises):
        a, b = _extremes(pot, a, b, rising=True, tol=settings.spike_min_rise / 2)
        earlier = [t for t in drop_spans if t[0] < a]
        kind = "spike"
        if earlier and pot[b] < earlier[-1][2] + settings.spike_min_rise - 1e-12:
            kind = "recovery"
        events.append(_event_row(curve, kind, grid[a], grid[b], p, text, correct, answer_token))
    guess = lucky_guess(curve, correct, settings, text)
    event = guess.pop("event", None)
    if event is not None:
        events.append(event)
    spikes = [e for e in events if e["kind"] == "spike"]
    drop_rows = [e for e in events if e["kind"] == "drop"]
    summary = {
        "problem_id": curve.at("problem_id", 0), "trace_id": int(curve.at("trace_id", 0)),
        "trace_correct": correct, "n_grid_cuts": len(grid),
        "n_samples": int(np.median(curve.c["n_samples"][grid])) if len(grid) else 0,
        "pot_start": float(pot[0]) if len(pot) else np.nan, "pot_end": float(pot[-1]) if len(pot) else np.nan,
        "monotone": bool(shortfall(pot) <= settings.monotone_tolerance + 1e-12),
        "n_spikes": len(spikes), "n_drops": len(drop_rows),
        "n_drops_recovered": sum(bool(e["recovered"]) for e in drop_rows),
        "max_spike": max((e["size"] for e in spikes), default=0.0),
        "max_drop": max((-e["size"] for e in drop_rows), default=0.0),
        **guess, "n_tests": n_tests,
        "max_shortfall": float(shortfall(pot)), "no_significant_drop": not any_drop,
    }
    return sorted(events, key=lambda e: (e["cut_start"], e["kind"])), summary


def lucky_guess(curve: _Curve, correct: bool, settings: DynamicsSettings,
                text: str | None = None) -> dict[str, Any]:
    """Is this curve a lucky guess? Needs the answer cut at offset 0 (the prefix that ends just
    before the answer is first stated); without one the trace is not evaluable."""
    out: dict[str, Any] = {"guess_evaluable": False, "lucky_guess": False,
                           "pre_answer_potential": np.nan, "pre_answer_ci_high": np.nan}
    at = np.nonzero(curve.c["answer_offset"] == 0)[0]
    if not len(at):
        return out
    pre = int(at[0])
    out.update(guess_evaluable=True, pre_answer_potential=float(curve.at("potential", pre)),
               pre_answer_ci_high=float(curve.at("ci_high", pre)))
    is_guess = (correct and curve.at("ci_high", 0) <= settings.guess_start_max + 1e-12
                and curve.at("ci_high", pre) <= settings.guess_pre_answer_max + 1e-12)
    out["lucky_guess"] = bool(is_guess)
    if is_guess:
        end = min(pre + 1, len(curve) - 1)
        # p-value of "the potential before the answer is at least tau" (exact binomial)
        p = float(stats.binom.cdf(int(curve.at("n_correct", pre)), int(curve.at("n_samples", pre)),
                                  settings.guess_pre_answer_max))
        out["event"] = _event_row(curve, "lucky_guess", pre, end, p, text, True, -1)
    return out


def _event_row(curve: _Curve, kind: str, i: int, j: int, p: float, text: str | None, correct: bool,
               answer_token: int, **extra: Any) -> dict[str, Any]:
    """An event between the cuts at rows ``i`` and ``j`` of the curve."""
    char_start, char_end = int(curve.at("char_offset", i)), int(curve.at("char_offset", j))
    span = text[char_start:char_end] if text is not None and char_start >= 0 else ""
    at_answer = None
    if kind == "lucky_guess":
        at_answer = True
    elif answer_token >= 0:
        at_answer = bool(int(curve.at("cut_token", i)) <= answer_token < int(curve.at("cut_token", j)))
    before, after = float(curve.at("potential", i)), float(curve.at("potential", j))
    row = {
        "event_id": f"{curve.at('problem_id', i)}/{int(curve.at('trace_id', i))}/{kind}/{int(curve.at('cut_index', i))}",
        "problem_id": curve.at("problem_id", i), "trace_id": int(curve.at("trace_id", i)), "kind": kind,
        "cut_start": int(curve.at("cut_index", i)), "cut_end": int(curve.at("cut_index", j)),
        "fraction_start": float(curve.at("cut_fraction", i)), "fraction_end": float(curve.at("cut_fraction", j)),
        "potential_before": before, "potential_after": after, "size": after - before, "p_value": float(p),
        "recovered": None, "recovery_cut": -1, "at_answer": at_answer, "trace_correct": correct,
        "char_start": char_start, "char_end": char_end, "span_text": span,
    }
    row.update(extra)
    return row


# --------------------------------------------------------------------------- all curves


def detect_events(potentials: pd.DataFrame, settings: DynamicsSettings = DynamicsSettings(),
                  texts: dict[tuple[str, int], str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events of every curve and one summary row per trace: ``(events, traces)``.

    ``potentials`` is a potentials table (or a simulated one); ``texts`` maps
    ``(problem_id, trace_id)`` to the trace's text, for the span that caused each event.
    """
    missing = {"problem_id", "trace_id", "cut_index", "cut_fraction", "n_samples", "n_correct",
               "potential", "ci_high"} - set(potentials.columns)
    if missing:
        raise ValueError(f"potentials table lacks the columns {sorted(missing)}")
    pot = potentials.sort_values([*CURVE, "cut_index"]).reset_index(drop=True)
    for name, default in _Curve.OPTIONAL.items():
        if name not in pot:
            pot[name] = default
    tests = window_tests(pot, settings)
    n_tests = tests.groupby(CURVE).size().to_dict()
    sig = tests[tests["p_adj"] <= settings.alpha]
    by_curve: dict[tuple[str, int], list[tuple[str, int, int, float, float]]] = {}
    for row in zip(sig["problem_id"], sig["trace_id"], sig["direction"], sig["pos_start"], sig["pos_end"],
                   sig["change"], sig["p_adj"]):
        by_curve.setdefault((row[0], row[1]), []).append((row[2], int(row[3]), int(row[4]), float(row[5]), float(row[6])))
    names = ["problem_id", "trace_id", "cut_index", "cut_fraction", "n_samples", "n_correct", "potential",
             "ci_high", *[n for n in _Curve.OPTIONAL if n not in ("trace_correct",)], "trace_correct"]
    arrays = {n: pot[n].to_numpy() for n in dict.fromkeys(names)}
    events, summaries = [], []
    for key, idx in pot.groupby(CURVE, sort=True).indices.items():
        curve = _Curve({n: a[idx] for n, a in arrays.items()})
        found = by_curve.get(key, [])
        text = (texts or {}).get((key[0], int(key[1])))
        evs, summary = _curve_events(curve, found, any(d == "drop" for d, *_ in found),
                                     int(n_tests.get(key, 0)), settings, text)
        events.extend(evs)
        summaries.append(summary)
    events_df = pd.DataFrame(events, columns=list(EVENT_COLUMNS))
    events_df["recovered"] = events_df["recovered"].astype("boolean")
    events_df["at_answer"] = events_df["at_answer"].astype("boolean")
    return events_df, pd.DataFrame(summaries, columns=list(TRACE_COLUMNS))


def trace_texts(traces: pd.DataFrame) -> dict[tuple[str, int], str]:
    return {(pid, int(tid)): text for pid, tid, text in zip(traces["problem_id"], traces["trace_id"], traces["text"])}


def events_job(potentials_path: str, traces_path: str, events_out: str, traces_out: str, *,
               settings: dict[str, Any], config: dict[str, Any]) -> None:
    """Rule events: ``results/events/{run}/{dataset}.parquet`` and the per-trace summary
    ``results/dynamics/{run}/{dataset}.parquet``."""
    from .provenance import provenance
    from .tables import read_table, write_table

    dyn = DynamicsSettings.from_config(settings)
    potentials = read_table(potentials_path)
    events, summary = detect_events(potentials, dyn, trace_texts(read_table(traces_path)))
    facts = dict(dynamics=dyn.__dict__, n_traces=len(summary), n_events=len(events))
    inputs = [potentials_path, traces_path]
    write_table(events, events_out, provenance(config, inputs=inputs, **facts))
    write_table(summary, traces_out, provenance(config, inputs=inputs, **facts))
    counts = events["kind"].value_counts().to_dict()
    log.info("%d traces: %d monotone, events %s", len(summary), int(summary["monotone"].sum()), counts)
