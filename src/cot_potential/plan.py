"""The cost planner: what a config will cost before it runs.

    python -m cot_potential.plan --configfile config/paper.yaml [--workdir .]

Prints, per stage (traces, rollouts, transfer rollouts, grading) and per model and dataset,
the predicted prefixes, completions, generated tokens and GPU hours, and the totals. Every
number says where it comes from:

- *measured* from an earlier run in ``--workdir`` (problem tables, trace lengths, mean
  completion lengths per prefix, the rollout jobs' benchmark files for throughput);
- *configured* in the config's ``plan`` section (problem counts of hub datasets not yet
  downloaded, expected trace lengths: thinking models on AIME write 10k+ tokens, engine
  throughput per model);
- a *default* otherwise (half of ``max_tokens`` per trace; ``plan.default_throughput``).

A continuation from a cut at fraction f of a trace of T tokens is taken to write (1 - f) T
tokens (the rest of a trace of the same length), unless measured. GPU hours count every GPU
of a tensor-parallel engine, and each job's engine start. In adaptive mode the rollout line
gives the expected cost under the stopping rule at measured potentials (else a uniform
spread of potentials) with one change per trace, and its upper bound.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .ids import slug

MIN_COMPLETION = 16  # even a continuation of a finished trace writes its answer and stop token


@dataclass
class Estimate:
    value: float
    basis: str  # measured | configured | default


class Planner:
    def __init__(self, config: dict[str, Any], workdir: Path = Path(".")):
        self.config, self.results = config, Path(workdir) / "results"
        self.plan = config.get("plan", {})

    # ------------------------------------------------------------------ inputs

    def problems(self, dataset: str) -> Estimate:
        table = self.results / "problems" / f"{dataset}.parquet"
        if table.is_file():
            return Estimate(len(pd.read_parquet(table, columns=["problem_id"])), "measured")
        spec = self.config["datasets"][dataset]
        if spec.get("limit"):
            return Estimate(spec["limit"], "configured")
        if spec["loader"] == "synthetic":
            return Estimate(spec["n_problems"], "configured")
        if spec["loader"] == "maze":  # n_per_generator mazes of each generator
            return Estimate(spec["maze"]["n_per_generator"] * len(spec["maze"]["generators"]), "configured")
        if spec["loader"] == "jsonl" and Path(spec["path"]).is_file():
            with open(spec["path"], encoding="utf-8") as handle:
                return Estimate(sum(1 for line in handle if line.strip()), "measured")
        if dataset in self.plan.get("problems", {}):
            return Estimate(self.plan["problems"][dataset], "configured")
        raise SystemExit(f"plan: cannot count the problems of dataset {dataset!r} offline; "
                         f"set plan.problems.{dataset} in the config")

    def trace_tokens(self, model: str, dataset: str) -> Estimate:
        table = self.results / "traces" / slug(model) / f"{dataset}.parquet"
        if table.is_file():
            return Estimate(float(pd.read_parquet(table, columns=["n_tokens"])["n_tokens"].mean()), "measured")
        configured = self.plan.get("trace_tokens", {}).get(model)
        if isinstance(configured, dict) and dataset in configured:
            return Estimate(configured[dataset], "configured")
        if isinstance(configured, (int, float)):
            return Estimate(configured, "configured")
        return Estimate(self.config["models"][model]["sampling"]["max_tokens"] / 2, "default")

    def mean_completion(self, run: str, dataset: str) -> float | None:
        table = self.results / "potentials" / run / f"{dataset}.parquet"
        if not table.is_file():
            return None
        pot = pd.read_parquet(table, columns=["mean_completion_tokens", "n_samples"])
        return float(np.average(pot["mean_completion_tokens"], weights=pot["n_samples"]))

    def throughput(self, model: str) -> Estimate:
        """Generated tokens per second of one engine job of this model."""
        folder = self.results.parent / "benchmarks" / "rollout" / slug(model)
        seconds = tokens = 0.0
        for tsv in folder.glob("*/shard-*.tsv"):
            shard = self.results / "rollouts" / slug(model) / tsv.parent.name / (tsv.stem + ".parquet")
            if shard.is_file():
                seconds += float(pd.read_csv(tsv, sep="\t")["s"].iloc[-1])
                tokens += float(pd.read_parquet(shard, columns=["n_tokens"])["n_tokens"].sum())
        if seconds > 0:
            return Estimate(tokens / seconds, "measured")
        configured = self.plan.get("throughput", {}).get(model)
        if configured:
            return Estimate(configured, "configured")
        return Estimate(self.plan.get("default_throughput", 2000), "default")

    def gpus(self, model: str) -> int:
        engine = {**self.config.get("engine", {}), **self.config["models"][model].get("engine", {})}
        return int(engine.get("tensor_parallel_size", 1))

    def cuts_per_trace(self, tokens: float) -> int:
        cuts = self.config.get("prefixes", {})
        mode = cuts.get("mode", "fraction")
        if mode == "fraction":
            return len(set(cuts.get("fractions", [i / 20 for i in range(21)])))
        if mode == "stride":
            return int(tokens // cuts.get("stride", 32)) + 1
        return int(cuts.get("max_cuts") or max(2, tokens // 25))  # boundary: ~a sentence per 25 tokens

    def fractions(self, tokens: float) -> list[float]:
        cuts = self.config.get("prefixes", {})
        if cuts.get("mode", "fraction") == "fraction":
            return sorted(set(cuts.get("fractions", [i / 20 for i in range(21)])))
        k = self.cuts_per_trace(tokens)
        return [i / (k - 1) for i in range(k)]

    # ------------------------------------------------------------------ stages

    def lines(self) -> list[dict[str, Any]]:
        out = []
        n = self.config.get("rollouts", {}).get("n", 128)
        per_problem = self.config.get("traces", {}).get("per_problem", 1)
        shards = self.config.get("rollouts", {}).get("shards", 1)
        adaptive = self.config.get("rollouts", {}).get("sampling", "fixed") == "adaptive"
        start_s = self.plan.get("engine_start_s", 120)
        runs = sorted({(e["model"], d) for e in self.config.get("potentials", []) for d in e["datasets"]})
        imported = self.config.get("traces", {}).get("imported", {})
        generated = sorted({(m, d) for m, d in runs if d not in imported}
                           | {(p["source"], d) for p in self.config.get("transfer", {}).get("pairs", [])
                              for d in p["datasets"] if p["source"] in self.config["models"]}
                           | {(p["target"], d) for p in self.config.get("transfer", {}).get("pairs", [])
                              for d in p["datasets"]})

        def line(stage, model, dataset, jobs, prefixes, completions, tokens, bases, gpus):
            rate = self.throughput(model)
            hours = gpus * (tokens / rate.value + jobs * start_s) / 3600
            out.append({"stage": stage, "model": model, "dataset": dataset, "jobs": jobs, "prefixes": prefixes,
                        "completions": completions, "tokens": tokens, "gpu_hours": hours,
                        "basis": ", ".join(sorted(set(bases + [f"throughput {rate.basis}"])))})

        for model, dataset in generated:
            problems, length = self.problems(dataset), self.trace_tokens(model, dataset)
            traces = problems.value * per_problem
            line("traces", model, dataset, 1, 0, traces, traces * length.value,
                 [f"problems {problems.basis}", f"trace length {length.basis}"], self.gpus(model))
        for model, dataset in runs:
            source = imported[dataset]["dataset"] if dataset in imported else dataset
            problems = self.problems(source)
            length = self.trace_tokens(model, dataset) if dataset not in imported else self.trace_tokens(model, source)
            traces = problems.value * per_problem
            fractions = self.fractions(length.value)
            measured = self.mean_completion(slug(model), dataset)
            per_sample = [measured] * len(fractions) if measured else \
                [max(MIN_COMPLETION, (1 - f) * length.value) for f in fractions]
            samples = self._samples_per_cut(n, adaptive, slug(model), dataset, len(fractions), length.value)
            completions = traces * samples * len(fractions)
            tokens = traces * samples * sum(per_sample)
            bases = [f"problems {problems.basis}", f"trace length {length.basis}",
                     "completion length measured" if measured else "completion length (1-f) T"]
            stage = "rollouts (adaptive, expected)" if adaptive else "rollouts"
            line(stage, model, dataset, shards, traces * len(fractions), completions, tokens, bases, self.gpus(model))
            if adaptive:
                bound = self._adaptive_bound(n, len(fractions))
                line("rollouts (adaptive, upper bound)", model, dataset, shards, traces * len(fractions),
                     traces * bound, traces * bound * float(np.mean(per_sample)), bases, self.gpus(model))
        transfer = self.config.get("transfer", {})
        n_transfer = transfer.get("n") or n
        for pair in transfer.get("pairs", []):
            target = pair["target"]
            fractions = [f for f in pair["fractions"] if f > 0]
            conditions = transfer.get("conditions", ["source", "own", "reasonless", "shuffled"])
            for dataset in pair["datasets"]:
                problems = self.problems(dataset)
                length = self.trace_tokens(target, dataset)
                others = len([c for c in conditions if c != "own"])
                streams = per_problem * others + (1 if "own" in conditions else 0)  # prefixes per f > 0
                base = (transfer.get("alone_factor", 4) + 1) * n_transfer  # alone + floor at f = 0
                completions_pp = base + streams * len(fractions) * n_transfer
                tokens_pp = base * length.value + streams * n_transfer * sum(
                    max(MIN_COMPLETION, (1 - f) * length.value) for f in fractions)
                prefixes_pp = 2 + streams * len(fractions)
                line(f"transfer rollouts ({pair['name']})", target, dataset, shards, problems.value * prefixes_pp,
                     problems.value * completions_pp, problems.value * tokens_pp,
                     [f"problems {problems.basis}", f"trace length {length.basis}"], self.gpus(target))
        return out

    def _samples_per_cut(self, n: int, adaptive: bool, run: str, dataset: str, cuts: int, length: float) -> float:
        if not adaptive:
            return float(n)
        from .adaptive import AdaptiveSettings

        settings = AdaptiveSettings.from_config(self.config["rollouts"].get("adaptive", {}), n)
        rule = settings.rule
        table = self.results / "potentials" / run / f"{dataset}.parquet"
        ps = pd.read_parquet(table, columns=["potential"])["potential"].clip(0, 1).tolist() if table.is_file() \
            else list(np.linspace(0, 1, 11))
        estimate = float(np.mean([rule.exact_operating_characteristics(round(p, 2))["mean_n"] for p in ps]))
        search = 0.0
        if settings.refine:
            refinement = settings.refinement(int(length))
            depth = math.ceil(math.log2(max(2.0, length / max(1, cuts - 1) / refinement.min_gap)))
            search = settings.search_n * (cuts + depth) + 2 * estimate  # one change: its search cuts, 2 brackets
        return estimate + search / cuts

    def _adaptive_bound(self, n: int, cuts: int) -> float:
        from .adaptive import AdaptiveSettings

        settings = AdaptiveSettings.from_config(self.config["rollouts"].get("adaptive", {}), n)
        if not settings.refine:
            return float(settings.max_n * cuts)
        reported = min(settings.max_cuts, 3 * cuts)  # brackets are cuts too: at most all of them reported
        return float(settings.search_n * settings.max_cuts + settings.max_n * reported)


def grading_lines(lines: list[dict[str, Any]], config: dict[str, Any]) -> list[dict[str, Any]]:
    ms = config.get("plan", {}).get("grading_ms", 1.0)
    workers = config.get("grading", {}).get("workers", 2)
    completions = sum(x["completions"] for x in lines if not x["stage"].endswith("upper bound"))
    return [{"stage": "grading (CPU)", "model": "all", "dataset": "all", "jobs": "", "prefixes": "",
             "completions": completions, "tokens": 0, "gpu_hours": 0.0,
             "cpu_hours": completions * ms / 1000 / 3600, "workers": workers,
             "basis": f"{ms:g} ms per completion (an upper bound: distinct answers are verified once)"}]


def api_cost_lines(lines: list[dict[str, Any]], config: dict[str, Any]) -> list[dict[str, Any]]:
    """Per model priced in ``plan.price_per_mtoken`` (a served or hosted model): its generated
    tokens (every stage) and their cost. Prompt tokens are not counted: one request per prefix
    sends its prompt once for all N samples, and servers cache the shared prefixes."""
    prices = config.get("plan", {}).get("price_per_mtoken", {})
    out = []
    for model, price in sorted(prices.items()):
        tokens = sum(x["tokens"] for x in lines if x["model"] == model and not x["stage"].endswith("upper bound"))
        out.append({"stage": "API cost", "model": model, "tokens": tokens, "price_per_mtoken": price,
                    "cost": tokens / 1e6 * price})
    return out


def render_costs(costs: list[dict[str, Any]]) -> str:
    return "\n".join(f"API cost  {c['model']}: {c['tokens'] / 1e6:,.2f} M generated tokens x "
                     f"{c['price_per_mtoken']:g} per M = {c['cost']:,.2f}" for c in costs)


def render(lines: list[dict[str, Any]], grading: list[dict[str, Any]]) -> str:
    df = pd.DataFrame(lines)
    rows = []
    for x in lines:
        rows.append([x["stage"], x["model"], x["dataset"], x["jobs"], f"{x['prefixes']:,.0f}",
                     f"{x['completions']:,.0f}", f"{x['tokens'] / 1e6:,.1f}", f"{x['gpu_hours']:,.1f}", x["basis"]])
    counted = df[~df["stage"].str.endswith("upper bound")]
    for stage, group in counted.groupby(counted["stage"].str.split(" \\(").str[0], sort=False):
        rows.append([f"TOTAL {stage}", "", "", int(group["jobs"].sum()), f"{group['prefixes'].sum():,.0f}",
                     f"{group['completions'].sum():,.0f}", f"{group['tokens'].sum() / 1e6:,.1f}",
                     f"{group['gpu_hours'].sum():,.1f}", ""])
    for g in grading:
        rows.append([g["stage"], "", "", "", "", f"{g['completions']:,.0f}", "", f"{g['cpu_hours']:,.1f} CPU h",
                     g["basis"]])
    rows.append(["TOTAL", "", "", int(counted["jobs"].sum()), f"{counted['prefixes'].sum():,.0f}",
                 f"{counted['completions'].sum():,.0f}", f"{counted['tokens'].sum() / 1e6:,.1f}",
                 f"{counted['gpu_hours'].sum():,.1f}", ""])
    headers = ["stage", "model", "dataset", "jobs", "prefixes", "completions", "Mtokens", "GPU h", "basis"]
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
    fmt = lambda r: "  ".join(str(c).ljust(w) if i in (0, 1, 2, 8) else str(c).rjust(w)  # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(headers), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def load_config(paths: Sequence[Path]) -> dict[str, Any]:
    import yaml

    from .config import validate

    config: dict[str, Any] = {}
    for path in paths:
        config.update(yaml.safe_load(Path(path).read_text()))
    return validate(config)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cot_potential.plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", type=Path, nargs="+", default=[Path("config/config.yaml")])
    parser.add_argument("--workdir", type=Path, default=Path("."),
                        help="a working directory with results of an earlier run to measure from")
    parser.add_argument("--json", action="store_true", help="print the lines as JSON instead of a table")
    args = parser.parse_args(argv)
    from .config import ConfigError

    try:
        config = load_config(args.configfile)
    except ConfigError as err:
        raise SystemExit(str(err)) from None  # the paragraph alone, not a traceback
    lines = Planner(config, args.workdir).lines()
    grading = grading_lines(lines, config)
    costs = api_cost_lines(lines, config)
    if args.json:
        print(json.dumps(lines + grading + costs, indent=2, default=float))
    else:
        print(render(lines, grading) + ("\n" + render_costs(costs) if costs else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
