"""Labels for spikes (insight | jump) and drops (tangent | flaw | other): an annotation export
for humans, their import, and the rule that decides which labels (if any) the rates may use.

The paper separates spikes explained by the text just generated (*insights*) from spikes that
are hard to interpret (*jumps*), and names two causes of sharp drops: *tangents* (the trace
wanders off) and *flaws* (a mistake). Both splits are judgements (criteria: docs/dynamics.md):
rates are reported only from human labels, or from an automatic labeller (``judge.py``) whose
agreement with human labels (Cohen's kappa) has been measured on that kind of event and is
high enough. Otherwise those rates stay empty and the label source is ``none``: never a
made-up split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

LABELS_BY_KIND = {"spike": ("insight", "jump"), "drop": ("tangent", "flaw", "other")}
LABELS = tuple(label for labels in LABELS_BY_KIND.values() for label in labels)
ANNOTATION_COLUMNS = (
    "event_id", "kind", "model", "dataset", "problem_id", "trace_id", "cut_start", "cut_end",
    "fraction_start", "fraction_end", "potential_before", "potential_after", "at_answer", "problem",
    "gold", "trace_answer", "context_before", "span_text", "context_after", "label", "annotator", "notes",
)


def annotation_rows(events: pd.DataFrame, traces: pd.DataFrame, problems: pd.DataFrame, *, model: str,
                    dataset: str, context_chars: int) -> pd.DataFrame:
    """One row per spike and per drop with what a labeller needs: the problem, the text before
    the event (``context_chars``), the span that caused it and what follows; ``label`` left empty."""
    spikes = events[events["kind"].isin(list(LABELS_BY_KIND))]
    text = {(p, int(t)): x for p, t, x in zip(traces["problem_id"], traces["trace_id"], traces["text"])}
    answer = {(p, int(t)): a for p, t, a in zip(traces["problem_id"], traces["trace_id"], traces["answer"])}
    by_id = problems.set_index("problem_id")
    rows = []
    for ev in spikes.to_dict("records"):
        key = (ev["problem_id"], int(ev["trace_id"]))
        full = text.get(key, "")
        a, b = int(ev["char_start"]), int(ev["char_end"])
        rows.append({
            "event_id": ev["event_id"], "kind": ev["kind"], "model": model, "dataset": dataset,
            "problem_id": ev["problem_id"], "trace_id": int(ev["trace_id"]),
            "cut_start": int(ev["cut_start"]), "cut_end": int(ev["cut_end"]),
            "fraction_start": ev["fraction_start"], "fraction_end": ev["fraction_end"],
            "potential_before": ev["potential_before"], "potential_after": ev["potential_after"],
            "at_answer": ev["at_answer"], "problem": by_id.loc[ev["problem_id"], "problem"],
            "gold": by_id.loc[ev["problem_id"], "answer"], "trace_answer": answer.get(key),
            "context_before": full[max(0, a - context_chars):a], "span_text": full[a:b],
            "context_after": full[b:b + context_chars // 3], "label": "", "annotator": "", "notes": "",
        })
    return pd.DataFrame(rows, columns=list(ANNOTATION_COLUMNS))


def read_labels(path: str | Path) -> pd.DataFrame:
    """Human labels: a CSV or JSONL file with ``event_id`` and ``label`` (insight | jump for
    spikes, tangent | flaw | other for drops), e.g. the annotation export with its ``label``
    column filled in. Rows with no label are skipped
    (a partly labelled export); any other value is an error naming the file and row."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file {path} does not exist")
    if path.suffix == ".jsonl":
        table = pd.read_json(path, lines=True, dtype=False)
    else:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"event_id", "label"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: label file lacks the columns {sorted(missing)}")
    table = table.assign(label=table["label"].fillna("").astype(str).str.strip().str.lower())
    table = table[table["label"] != ""]
    bad = table[~table["label"].isin(LABELS)]
    if len(bad):
        row = bad.iloc[0]
        raise ValueError(f"{path}: event {row['event_id']!r} has label {row['label']!r}; use one of {LABELS}")
    dup = table[table["event_id"].duplicated(keep=False)]
    if len(dup) and dup.groupby("event_id")["label"].nunique().gt(1).any():
        raise ValueError(f"{path}: conflicting labels for {sorted(set(dup['event_id']))[:3]}")
    return table.drop_duplicates("event_id")[["event_id", "label"]].reset_index(drop=True)


def cohen_kappa(a, b) -> float:
    """Cohen's kappa of two labellings of the same items (NaN without items; 1 if both agree
    on a single class throughout)."""
    a, b = np.asarray(a), np.asarray(b)
    if len(a) != len(b):
        raise ValueError("kappa needs two labellings of the same items")
    if len(a) == 0:
        return float("nan")
    observed = float(np.mean(a == b))
    classes = np.union1d(a, b)
    expected = float(sum(np.mean(a == c) * np.mean(b == c) for c in classes))
    if expected >= 1.0:
        return 1.0 if observed == 1.0 else float("nan")
    return (observed - expected) / (1.0 - expected)


@dataclass(frozen=True)
class Resolution:
    """The labels the rates may use for one kind of event, where they come from, and the
    agreement behind them."""

    labels: dict[str, str]  # event_id -> label (empty for source none)
    source: str  # human | judge | none | no_spikes (no_drops)
    kappa: float  # judge vs. human on the events both labelled
    n_human: int
    n_judge: int
    n_overlap: int


def no_labels() -> Resolution:
    return Resolution({}, "none", float("nan"), 0, 0, 0)


def resolve_labels(event_ids: list[str], human: pd.DataFrame | None, judge: pd.DataFrame | None, *,
                   min_kappa: float, min_overlap: int, kind: str = "spike") -> Resolution:
    """For the events of one ``kind`` (their ids): human labels if they cover every event;
    else the judge's (human ones where given) if it agrees with humans on at least
    ``min_overlap`` of these events with kappa >= ``min_kappa``; else none. Only labels of
    this kind count (a spike's label on a drop is ignored here, and an error in
    ``check_label_kinds``)."""
    allowed = LABELS_BY_KIND[kind]
    events = set(event_ids)

    def usable(table: pd.DataFrame | None) -> dict[str, str]:
        if table is None:
            return {}
        return {e: lab for e, lab in zip(table["event_id"], table["label"]) if e in events and lab in allowed}

    human_map, judge_map = usable(human), usable(judge)
    both = sorted(set(human_map) & set(judge_map))
    kappa = cohen_kappa([human_map[e] for e in both], [judge_map[e] for e in both]) if both else float("nan")
    facts = dict(kappa=kappa, n_human=len(human_map), n_judge=len(judge_map), n_overlap=len(both))
    if not events:
        return Resolution({}, f"no_{kind}s", **facts)
    if events <= set(human_map):
        return Resolution(human_map, "human", **facts)
    if len(both) >= min_overlap and kappa >= min_kappa and events <= set(judge_map) | set(human_map):
        return Resolution({**judge_map, **human_map}, "judge", **facts)
    return Resolution({}, "none", **facts)


def check_label_kinds(labels: pd.DataFrame, events: pd.DataFrame, source: str) -> None:
    """Every label names an event of this run and fits its kind (insight | jump on spikes,
    tangent | flaw | other on drops); else a ``ValueError`` naming ``source``."""
    kinds = dict(zip(events["event_id"], events["kind"]))
    unknown = sorted(set(labels["event_id"]) - set(kinds))
    if unknown:
        raise ValueError(f"{source}: {len(unknown)} event ids are not events of this run, e.g. {unknown[:3]} "
                         "(were the labels made for another run?)")
    for event_id, label in zip(labels["event_id"], labels["label"]):
        if label not in LABELS_BY_KIND.get(kinds[event_id], ()):
            raise ValueError(f"{source}: event {event_id!r} is a {kinds[event_id]}, which cannot be labelled "
                             f"{label!r} (use one of {LABELS_BY_KIND.get(kinds[event_id], ())})")


def annotations_job(events_path: str, traces_path: str, problems_path: str, csv_out: str, jsonl_out: str, *,
                    model: str, dataset: str, context_chars: int, config: dict[str, Any]) -> None:
    """Rule annotations: every spike and drop of a run, for humans to label (CSV and JSONL)."""
    from .provenance import provenance
    from .tables import read_table, write_table, write_text

    rows = annotation_rows(read_table(events_path), read_table(traces_path), read_table(problems_path),
                           model=model, dataset=dataset, context_chars=context_chars)
    counts = rows["kind"].value_counts()
    write_table(rows, csv_out, provenance(config, model=model, dataset=dataset, n_spikes=int(counts.get("spike", 0)),
                                          n_drops=int(counts.get("drop", 0)),
                                          inputs=[events_path, traces_path, problems_path]))
    lines = [json.dumps(r, ensure_ascii=False, default=str) for r in rows.to_dict("records")]
    write_text(jsonl_out, "".join(line + "\n" for line in lines))
