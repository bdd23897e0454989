"""A realistic rollout set from the real pipeline: SmolLM2 (one-shot) on 10 arithmetic
problems, cuts every 10% (11) and N = 32: about 3.5k completions of the real workflow (at
smoke size 2 problems x 3 cuts x N = 4, which only checks that a benchmark runs).

Built once with the workflow itself into ``.cache/bench/real-run-<problems>x<cuts>x<N>``
(about 10 minutes on 2 CPU cores: the paper's grid x N = 64 on 16 problems, one paper-scale
shard of 21k completions, took 52 minutes); ``--run DIR`` points the benchmarks at any
finished run of the same model and dataset instead (e.g. that larger one).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import yaml

from _common import CACHE, REPO, place_weights, snakemake_cmd

MODEL, DATASET = "smollm2-oneshot", "arith"
# Sized for ~10 minutes of 2 cores; the grading ratio grows with the set (fixed worker start-up).
SIZE = {"full": (10, 11, 32), "smoke": (2, 3, 4)}  # problems, cuts, N


def real_config(problems: int, cuts: int, n: int) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["datasets"][DATASET]["n_problems"] = problems
    config["prefixes"]["fractions"] = [round(i / (cuts - 1), 2) for i in range(cuts)]
    # The grid only: answer cuts sit off the grid and would distort the fitted curve shapes.
    config["prefixes"]["answer_cuts"] = []
    config["rollouts"].update(n=n, tokens_per_shard=10**12, sampling="fixed")  # one shard
    config["transfer"]["pairs"] = []
    config["potentials"] = [{"model": MODEL, "datasets": [DATASET]}]
    return config


def ensure_run(run: Path | None, smoke: bool = False) -> Path:
    """A working directory with the real run's results (built if missing)."""
    problems, cuts, n = SIZE["smoke" if smoke else "full"]
    workdir = run or CACHE / f"real-run-{problems}x{cuts}x{n}"
    target = workdir / "results" / "potentials" / MODEL / f"{DATASET}.parquet"
    if not target.is_file() and not (run is not None and (workdir / "results" / "rollouts" / MODEL / DATASET).is_dir()):
        if run is not None:
            raise SystemExit(f"{target} is missing: --run must be a finished workflow working directory")
        print(f"building the rollout set in {workdir} (the real pipeline, {problems} problems x {cuts} cuts "
              f"x N = {n}{'' if smoke else '; ~10 min on 2 cores'})", flush=True)
        workdir.mkdir(parents=True, exist_ok=True)
        place_weights(workdir)
        (workdir / "config.yaml").write_text(yaml.safe_dump(real_config(problems, cuts, n), sort_keys=False))
        subprocess.run(snakemake_cmd(workdir, workdir / "config.yaml", "--cores", "all", str(target.relative_to(workdir))),
                       cwd=workdir, check=True)
    return workdir


def describe(workdir: Path, run: dict) -> str:
    """Which rollout set the numbers come from (printed by every benchmark that uses one)."""
    config = yaml.safe_load((workdir / "config.yaml").read_text()) if (workdir / "config.yaml").is_file() else {}
    rollouts = run["rollouts"]
    n = config.get("rollouts", {}).get("n", "?")
    problems = rollouts["prefix_id"].map(dict(zip(run["prefixes"].index, run["prefixes"]["problem_id"]))).nunique()
    cuts = len(config.get("prefixes", {}).get("fractions", [])) or "?"
    return (f"rollout set: {workdir} ({MODEL} on {DATASET}: {problems} problems x {cuts} cuts x N = {n}; "
            f"{rollouts['prefix_id'].nunique()} prefixes, {len(rollouts)} completions)")


def _maybe(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.is_file() else None


def load_run(workdir: Path) -> dict:
    """Rollouts with their texts and gold answers, potentials, and the model card of a run."""
    results = workdir / "results"
    rollouts = pd.concat([pd.read_parquet(p) for p in sorted((results / "rollouts" / MODEL / DATASET).glob("shard-*.parquet"))],
                         ignore_index=True)
    prefixes = pd.read_parquet(results / "prefixes" / MODEL / f"{DATASET}.parquet").set_index("prefix_id")
    problems = pd.read_parquet(results / "problems" / f"{DATASET}.parquet").set_index("problem_id")
    owner = prefixes.loc[rollouts["prefix_id"]]
    return {
        "rollouts": rollouts,
        "texts": [p + c for p, c in zip(owner["prefix_text"], rollouts["completion_text"])],
        "golds": problems.loc[owner["problem_id"], "answer"].tolist(),
        "finish_reasons": rollouts["finish_reason"].tolist(),
        "potentials": _maybe(results / "potentials" / MODEL / f"{DATASET}.parquet"),
        "prefixes": prefixes,
        "card": json.loads((results / "models" / MODEL / "card.json").read_text()),
    }
