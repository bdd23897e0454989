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
of a tensor-parallel engine, and each job's engine start (``plan.engine_start_s``); the
``engine starts`` line sums the starts and gives their share of the total. The jobs of a
rollout run are its shards (``rollout_shards``: planned tokens over
``rollouts.tokens_per_shard``, from the config alone, as the workflow makes them). In
adaptive mode the rollout line gives the expected cost under the stopping rule at measured
potentials (else a uniform spread of potentials) with one change per trace, and its upper
bound.
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

from .config import ConfigError, transfer_lengths
from .ids import slug
from .shards import shard_count

MIN_COMPLETION = 16  # even a continuation of a finished trace writes its answer and stop token


@dataclass
class Estimate:
    value: float
    basis: str  # measured | configured | default


class Planner:
    """Plans a config; ``workdir=None`` plans from the config alone (nothing measured), which is
    how the shard counts are made (``rollout_shards``)."""

    def __init__(self, config: dict[str, Any], workdir: Path | None = Path(".")):
        self.config, self.plan = config, config.get("plan", {})
        self.results = Path(workdir) / "results" if workdir is not None else None

    def measured(self, *parts: str) -> Path | None:
        """A result of an earlier run in the working directory, if there is one (and a workdir)."""
        if self.results is None:
            return None
        path = self.results.joinpath(*parts)
        return path if path.exists() else None

    # ------------------------------------------------------------------ inputs

    def problems(self, dataset: str) -> Estimate:
        table = self.measured("problems", f"{dataset}.parquet")
        if table:
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
        # The shard counts need it too (rollout_shards), so it is a config error, not the CLI's.
        raise ConfigError(f"plan: cannot count the problems of dataset {dataset!r} offline (the cost "
                          f"planner and the shard counts need it); set plan.problems.{dataset} "
                          f"or datasets.{dataset}.limit in the config")

    def trace_tokens(self, model: str, dataset: str) -> Estimate:
        table = self.measured("traces", slug(model), f"{dataset}.parquet")
        if table:
            return Estimate(float(pd.read_parquet(table, columns=["n_tokens"])["n_tokens"].mean()), "measured")
        configured = self.plan.get("trace_tokens", {}).get(model)
        if isinstance(configured, dict) and dataset in configured:
            return Estimate(configured[dataset], "configured")
        if isinstance(configured, (int, float)):
            return Estimate(configured, "configured")
        return Estimate(self.config["models"][model]["sampling"]["max_tokens"] / 2, "default")

    def mean_completion(self, run: str, dataset: str) -> float | None:
        table = self.measured("potentials", run, f"{dataset}.parquet")
        if not table:
            return None
        pot = pd.read_parquet(table, columns=["mean_completion_tokens", "n_samples"])
        return float(np.average(pot["mean_completion_tokens"], weights=pot["n_samples"]))

    def throughput(self, model: str) -> Estimate:
        """Generated tokens per second of one engine job of this model."""
        seconds = tokens = 0.0
        benchmarks = self.results.parent / "benchmarks" / "rollout" / slug(model) if self.results else None
        for tsv in benchmarks.glob("*/shard-*.tsv") if benchmarks else []:
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

    # ------------------------------------------------------------------ runs

    def potential_runs(self) -> list[tuple[str, str]]:
        return sorted({(e["model"], d) for e in self.config.get("potentials", []) for d in e["datasets"]})

    def rollout_work(self, model: str, dataset: str) -> dict[str, Any]:
        """A potential run: its problems, traces, cuts per trace and the tokens of one completion
        at each cut (measured where the workdir has them, else (1 - f) T)."""
        imported = self.config.get("traces", {}).get("imported", {})
        source = imported[dataset]["dataset"] if dataset in imported else dataset
        problems, length = self.problems(source), self.trace_tokens(model, source)
        fractions = self.fractions(length.value)
        measured = self.mean_completion(slug(model), dataset)
        per_cut = [measured] * len(fractions) if measured else \
            [max(MIN_COMPLETION, (1 - f) * length.value) for f in fractions]
        return {"problems": problems.value, "traces": problems.value * self.config.get("traces", {}).get("per_problem", 1),
                "cuts": len(fractions), "length": length.value, "per_cut": per_cut,
                "bases": [f"problems {problems.basis}", f"trace length {length.basis}",
                          "completion length measured" if measured else "completion length (1-f) T"]}

    def transfer_work(self, pair: dict[str, Any], dataset: str) -> dict[str, Any]:
        """A transfer run: per problem the alone and floor batches at f = 0 and a stream of
        prefixes per condition (and source trace) at every f > 0."""
        transfer = self.config.get("transfer", {})
        n = transfer.get("n") or self.config.get("rollouts", {}).get("n", 128)
        fractions = [f for f in pair["fractions"] if f > 0]
        conditions = transfer.get("conditions", ["source", "own", "reasonless", "shuffled", "filler"])
        problems, length = self.problems(dataset), self.trace_tokens(pair["target"], dataset)
        others = len([c for c in conditions if c != "own"])
        streams = self.config.get("traces", {}).get("per_problem", 1) * others + (1 if "own" in conditions else 0)
        base = (transfer.get("alone_factor", 4) + 1) * n  # alone + floor at f = 0
        # The target writes the rest of its own trace, at most the pair's budget (the config
        # check's lengths): a longer placed prefix never shortens the budget.
        budget = transfer_lengths(self.config, pair)["budget"]
        tokens = base * min(budget, length.value) + streams * n * sum(
            min(budget, max(MIN_COMPLETION, (1 - f) * length.value)) for f in fractions)
        return {"problems": problems.value, "prefixes": problems.value * (2 + streams * len(fractions)),
                "completions": problems.value * (base + streams * len(fractions) * n),
                "tokens": problems.value * tokens,
                "bases": [f"problems {problems.basis}", f"trace length {length.basis}", f"budget {budget}"]}

    # ------------------------------------------------------------------ stages

    def lines(self) -> list[dict[str, Any]]:
        out = []
        n = self.config.get("rollouts", {}).get("n", 128)
        adaptive = self.config.get("rollouts", {}).get("sampling", "fixed") == "adaptive"
        start_s = self.plan.get("engine_start_s", 120)
        shards = rollout_shards(self.config)  # from the config alone, as the workflow plans them
        imported = self.config.get("traces", {}).get("imported", {})
        pairs = self.config.get("transfer", {}).get("pairs", [])
        generated = sorted({(m, d) for m, d in self.potential_runs() if d not in imported}
                           | {(p["source"], d) for p in pairs for d in p["datasets"] if p["source"] in self.config["models"]}
                           | {(p["target"], d) for p in pairs for d in p["datasets"]})

        def line(stage, model, dataset, jobs, prefixes, completions, tokens, bases):
            rate, gpus = self.throughput(model), self.gpus(model)
            out.append({"stage": stage, "model": model, "dataset": dataset, "jobs": jobs, "prefixes": prefixes,
                        "completions": completions, "tokens": tokens,
                        "gpu_hours": gpus * (tokens / rate.value + jobs * start_s) / 3600,
                        "start_gpu_hours": gpus * jobs * start_s / 3600,
                        "basis": ", ".join(sorted(set(bases + [f"throughput {rate.basis}"])))})

        for model, dataset in generated:
            problems, length = self.problems(dataset), self.trace_tokens(model, dataset)
            traces = problems.value * self.config.get("traces", {}).get("per_problem", 1)
            line("traces", model, dataset, 1, 0, traces, traces * length.value,
                 [f"problems {problems.basis}", f"trace length {length.basis}"])
        for model, dataset in self.potential_runs():
            work = self.rollout_work(model, dataset)
            jobs, traces, cuts = shards[(slug(model), dataset)], work["traces"], work["cuts"]
            samples = self._samples_per_cut(n, adaptive, slug(model), dataset, cuts, work["length"])
            line("rollouts (adaptive, expected)" if adaptive else "rollouts", model, dataset, jobs, traces * cuts,
                 traces * samples * cuts, traces * samples * sum(work["per_cut"]), work["bases"])
            if adaptive:
                bound = self._adaptive_bound(n, cuts)
                line("rollouts (adaptive, upper bound)", model, dataset, jobs, traces * cuts,
                     traces * bound, traces * bound * float(np.mean(work["per_cut"])), work["bases"])
        for pair in pairs:
            for dataset in pair["datasets"]:
                work = self.transfer_work(pair, dataset)
                line(f"transfer rollouts ({pair['name']})", pair["target"], dataset,
                     shards[(f"transfer.{slug(pair['name'])}", dataset)], work["prefixes"], work["completions"],
                     work["tokens"], work["bases"])
        return out

    def _samples_per_cut(self, n: int, adaptive: bool, run: str, dataset: str, cuts: int, length: float) -> float:
        if not adaptive:
            return float(n)
        from .adaptive import AdaptiveSettings

        settings = AdaptiveSettings.from_config(self.config["rollouts"].get("adaptive", {}), n)
        rule = settings.rule
        table = self.measured("potentials", run, f"{dataset}.parquet")
        ps = pd.read_parquet(table, columns=["potential"])["potential"].clip(0, 1).tolist() if table \
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


def rollout_shards(config: dict[str, Any]) -> dict[tuple[str, str], int]:
    """The shard count of every rollout run, ``(run, dataset) -> shards``, potential runs under
    their model's slug and transfer runs as ``transfer.<pair>``: the run's planned tokens at N
    samples per cut (problems x traces x cuts x N x the planner's (1 - f) T per completion; a
    transfer run's whole design) over ``rollouts.tokens_per_shard``. From the config alone,
    never from measured results, so the workflow's jobs do not change once results exist;
    the Snakemake rules and the planner both use it."""
    planner = Planner(config, workdir=None)
    per_shard = config["rollouts"]["tokens_per_shard"]
    n = config["rollouts"]["n"]
    counts = {}
    for model, dataset in planner.potential_runs():
        work = planner.rollout_work(model, dataset)
        tokens = work["traces"] * n * sum(work["per_cut"])
        counts[(slug(model), dataset)] = shard_count(tokens, work["problems"], per_shard)
    for pair in config.get("transfer", {}).get("pairs", []):
        for dataset in pair["datasets"]:
            work = planner.transfer_work(pair, dataset)
            counts[(f"transfer.{slug(pair['name'])}", dataset)] = shard_count(work["tokens"], work["problems"], per_shard)
    return counts


def engine_starts(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Every engine job's start (traces, rollout shards, transfer shards) as one line: its count,
    GPU hours and share of the planned GPU hours (which include them)."""
    counted = [x for x in lines if not x["stage"].endswith("upper bound")]
    hours = sum(x["start_gpu_hours"] for x in counted)
    total = sum(x["gpu_hours"] for x in counted)
    return {"stage": "engine starts", "jobs": sum(x["jobs"] for x in counted), "start_gpu_hours": hours,
            "share": hours / total if total else 0.0}


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
    starts = engine_starts(lines)
    rows.append([starts["stage"], "", "", starts["jobs"], "", "", "", f"{starts['start_gpu_hours']:,.1f}",
                 f"{starts['share']:.1%} of the total GPU h (included in it)"])
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
    try:
        config = load_config(args.configfile)
        lines = Planner(config, args.workdir).lines()
    except ConfigError as err:
        raise SystemExit(str(err)) from None  # the paragraph alone, not a traceback
    grading = grading_lines(lines, config)
    costs = api_cost_lines(lines, config)
    if args.json:
        print(json.dumps(lines + grading + costs + [engine_starts(lines)], indent=2, default=float))
    else:
        print(render(lines, grading) + ("\n" + render_costs(costs) if costs else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
