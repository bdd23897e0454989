"""Plan accuracy, trace validity and trace length vs. problem complexity of maze models.

One row per generated trace (``results/mazes/evaluation.parquet``) and a summary per model x
dataset x generator (``results/tables/mazes.csv``, with an ``all`` row per model x dataset).
The traces are the pipeline's own (stage ``traces``, graded there by the ``maze_plan``
grader); here the validator also replays each trace's A* bookkeeping. The reference A*
(``model = reference-astar``) is a row of its own: by construction its trace length tracks
the search effort, which is what the models' traces are compared with. So is the trivial
baseline (``model = greedy-walk``): from the start, step to the first neighbour (up, right,
down, left) that is free and closer to the goal, until the goal or a dead end; it needs no
search and no training, and a trained model must beat it to have learnt anything.

Complexity is the number of nodes the reference A* closes (its expansions) and the grid
size; the association with the trace length (words before ``solution``) is Spearman's rho
with its two-sided p-value (NaN when either side is constant).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from scipy import stats

from ..stats import clopper_pearson, mcnemar_exact
from .validate import check_plan, check_trace, parse_query, split_output

REFERENCE = "reference-astar"
BASELINE = "greedy-walk"
ITEM_COLUMNS = ("model", "run", "data", "post_training", "dataset", "problem_id", "trace_id", "generator", "size",
                "plan_status", "plan_correct", "trace_valid", "trace_error", "trace_words", "trace_empty",
                "n_tokens", "astar_closed", "plan_steps")


def judge(text: str, finish_reason: str, problem: dict[str, Any]) -> dict[str, Any]:
    """Plan status and trace validity of one model output."""
    grid = parse_query(problem["problem"], problem["width"], problem["height"])
    output = split_output(text)
    words = text.split()
    trace_words = words.index("solution") if "solution" in words else len(words)
    # Empty: nothing before the plan but the `reasoning` marker, if that (a model that learnt
    # to skip its trace; GRPO rewards the plan alone, so it may).
    trace_empty = trace_words - int(bool(words) and words[0] == "reasoning") == 0
    if finish_reason == "length":
        plan_status = "truncated"
    else:
        plan_status = check_plan(grid, output.plan, output.plan_status).status
    trace = check_trace(grid, output.events, output.reasoning_error) if output.has_reasoning else None
    return {
        "plan_status": plan_status,
        "plan_correct": plan_status == "correct",
        "trace_valid": None if trace is None else trace.valid,
        "trace_error": None if trace is None or trace.valid else trace.reason,
        "trace_words": trace_words,
        "trace_empty": trace_empty,
    }


def judge_traces(traces: pd.DataFrame, problems: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """One row per trace of one model on one dataset (``labels``: model, run, data, dataset and,
    optionally, post_training: none | grpo)."""
    by_id = problems.set_index("problem_id")
    rows = []
    for trace in traces.to_dict("records"):
        problem = {"problem_id": trace["problem_id"], **by_id.loc[trace["problem_id"]].to_dict()}
        rows.append({
            "post_training": "none", **labels, "problem_id": trace["problem_id"], "trace_id": int(trace["trace_id"]),
            "generator": problem["generator"], "size": int(problem["width"]),
            **judge(trace["text"], trace["finish_reason"], problem),
            "n_tokens": int(trace["n_tokens"]), "astar_closed": int(problem["astar_closed"]),
            "plan_steps": int(problem["plan_steps"]),
        })
    return pd.DataFrame(rows, columns=list(ITEM_COLUMNS))


def reference_items(problems: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The reference A*'s own traces and plans, judged the same way."""
    traces = pd.DataFrame({
        "problem_id": problems["problem_id"], "trace_id": 0, "finish_reason": "stop",
        "text": problems["reference_trace"] + " " + problems["answer"],
        "n_tokens": (problems["reference_trace"] + " " + problems["answer"]).str.split().str.len() + 1,
    })
    return judge_traces(traces, problems, {"model": REFERENCE, "run": REFERENCE, "data": "correct",
                                           "dataset": dataset})


def greedy_walk(grid) -> list[tuple[int, int]]:
    """The trivial baseline's plan (see the module docstring)."""
    path = [grid.start]
    while path[-1] != grid.goal:
        x, y = path[-1]
        here = abs(x - grid.goal[0]) + abs(y - grid.goal[1])
        closer = [c for c in ((x, y - 1), (x + 1, y), (x, y + 1), (x - 1, y))
                  if grid.free(c) and abs(c[0] - grid.goal[0]) + abs(c[1] - grid.goal[1]) < here]
        if not closer:
            break
        path.append(closer[0])
    return path


def baseline_items(problems: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The greedy walk's plans, judged the same way (it writes no trace)."""
    texts = []
    for row in problems.to_dict("records"):
        plan = greedy_walk(parse_query(row["problem"], row["width"], row["height"]))
        texts.append(" ".join(["solution"] + [f"plan {x} {y}" for x, y in plan]))
    traces = pd.DataFrame({"problem_id": problems["problem_id"], "trace_id": 0, "finish_reason": "stop",
                           "text": texts, "n_tokens": [len(t.split()) + 1 for t in texts]})
    return judge_traces(traces, problems, {"model": BASELINE, "run": BASELINE, "data": "solution",
                                           "dataset": dataset})


def _spearman(x: pd.Series, y: pd.Series) -> tuple[float, float]:
    if len(x) < 3 or x.nunique() < 2 or y.nunique() < 2:
        return float("nan"), float("nan")
    result = stats.spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)


def summarize(items: pd.DataFrame) -> pd.DataFrame:
    """Per model x dataset x generator (and ``all``): accuracy, validity, length vs. complexity."""
    groups = []
    for keys, group in items.groupby(["model", "run", "data", "post_training", "dataset"], sort=True):
        for generator, part in [*sorted(group.groupby("generator")), ("all", group)]:
            groups.append((keys, generator, part))
    rows = []
    for (model, run, data, post_training, dataset), generator, part in groups:
        n = len(part)
        k = int(part["plan_correct"].sum())
        low, high = clopper_pearson(k, n)
        has_trace = part["trace_valid"].notna()
        valid = part.loc[has_trace, "trace_valid"].astype(bool)
        v_low, v_high = clopper_pearson(int(valid.sum()), int(has_trace.sum()))
        rho_closed, p_closed = _spearman(part["trace_words"], part["astar_closed"])
        rho_size, p_size = _spearman(part["trace_words"], part["size"])
        rows.append({
            "model": model, "run": run, "data": data, "post_training": post_training, "dataset": dataset,
            "generator": generator,
            "n": n, "plan_accuracy": k / n, "plan_ci_low": float(low), "plan_ci_high": float(high),
            "suboptimal_rate": float((part["plan_status"] == "suboptimal").mean()),
            "illegal_rate": float((part["plan_status"] == "illegal").mean()),
            "no_plan_rate": float(part["plan_status"].isin(["no_plan", "malformed", "truncated"]).mean()),
            "trace_validity": float(valid.mean()) if len(valid) else float("nan"),
            "trace_ci_low": float(v_low) if len(valid) else float("nan"),
            "trace_ci_high": float(v_high) if len(valid) else float("nan"),
            "correct_plan_invalid_trace": float((part["plan_correct"] & (part["trace_valid"] == False)).mean())  # noqa: E712
            if len(valid) else float("nan"),
            "mean_trace_words": float(part["trace_words"].mean()),
            "empty_trace_rate": float(part["trace_empty"].mean()),
            "mean_astar_closed": float(part["astar_closed"].mean()),
            "rho_length_closed": rho_closed, "p_length_closed": p_closed,
            "rho_length_size": rho_size, "p_length_size": p_size,
        })
    return pd.DataFrame(rows)


def evaluation_job(runs: list[dict[str, str]], traces: list[str], problems: list[str], out_table: str,
                   out_items: str, *, config: dict[str, Any]) -> None:
    """``runs``: one ``{model, run, data, dataset}`` per (traces, problems) pair of paths."""
    import logging

    from ..provenance import provenance
    from ..tables import read_table, write_table
    from .plans import VERSION

    items = [judge_traces(read_table(t), read_table(p), labels) for labels, t, p in zip(runs, traces, problems)]
    seen = set()
    for labels, path in zip(runs, problems):
        if labels["dataset"] not in seen:
            seen.add(labels["dataset"])
            problems_table = read_table(path)
            items += [reference_items(problems_table, labels["dataset"]),
                      baseline_items(problems_table, labels["dataset"])]
    table = pd.concat(items, ignore_index=True)
    summary = summarize(table)
    record = provenance(config, grader_version=VERSION, runs=runs)
    write_table(table, out_items, record)
    write_table(summary, out_table, record)
    shown = summary[summary["generator"] == "all"][["model", "dataset", "n", "plan_accuracy", "trace_validity"]]
    logging.getLogger(__name__).info("maze evaluation:\n%s", shown.to_string(index=False))



# The measures compared before and after GRPO, each a yes/no per maze: a valid trace counts an
# output without one as not valid, so both sides are judged on the same mazes.
PAIRED = {"plan": "plan_correct", "valid_trace": "trace_valid", "empty_trace": "trace_empty"}


def _side(part: pd.DataFrame, suffix: str) -> dict[str, float]:
    row = {f"mean_trace_words_{suffix}": float(part["trace_words"].mean())}
    for name, column in PAIRED.items():
        k = int(part[column].eq(True).sum())
        low, high = clopper_pearson(k, len(part))
        row.update({f"{name}_rate_{suffix}": k / len(part), f"{name}_ci_low_{suffix}": float(low),
                    f"{name}_ci_high_{suffix}": float(high)})
    return row


def grpo_comparison(items: pd.DataFrame, pairs: list[tuple[str, str]]) -> pd.DataFrame:
    """Before vs. after GRPO on the same mazes, per dataset x generator (and ``all``): plan
    accuracy, valid-trace and empty-trace rates (95% Clopper-Pearson), mean trace length, and
    exact McNemar p-values of the paired yes/no outcomes (how many mazes were gained and lost)."""
    rows = []
    for before, after in pairs:
        b, a = items[items["model"] == before], items[items["model"] == after]
        for dataset in sorted(set(a["dataset"])):
            joined = b[b["dataset"] == dataset].merge(a[a["dataset"] == dataset], on=["problem_id", "trace_id"],
                                                     suffixes=("_before", "_after"))
            parts = [*sorted(joined.groupby("generator_after")), ("all", joined)]
            for generator, part in parts:
                row = {"run": part["run_after"].iloc[0], "data": part["data_after"].iloc[0], "before": before,
                       "after": after, "dataset": dataset, "generator": generator, "n": len(part)}
                for suffix in ("before", "after"):
                    side = part[[c for c in part.columns if c.endswith(f"_{suffix}")]]
                    row.update(_side(side.rename(columns=lambda c: c.removesuffix(f"_{suffix}")), suffix))
                for name, column in PAIRED.items():
                    was = part[f"{column}_before"].eq(True)
                    now = part[f"{column}_after"].eq(True)
                    row.update({f"{name}_gained": int((~was & now).sum()), f"{name}_lost": int((was & ~now).sum()),
                                f"{name}_mcnemar_p": mcnemar_exact(was, now)})
                rows.append(row)
    return pd.DataFrame(rows)


def grpo_comparison_job(items_path: str, out_table: str, *, pairs: list[list[str]], config: dict[str, Any]) -> None:
    import logging

    from ..provenance import provenance
    from ..tables import read_table, write_table

    table = grpo_comparison(read_table(items_path), [tuple(p) for p in pairs])
    write_table(table, out_table, provenance(config, pairs=pairs))
    shown = table[table["generator"] == "all"][["after", "dataset", "n", "plan_rate_before", "plan_rate_after",
                                                "plan_mcnemar_p", "valid_trace_rate_before", "valid_trace_rate_after"]]
    logging.getLogger(__name__).info("before vs. after GRPO:\n%s", shown.to_string(index=False))
