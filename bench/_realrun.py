"""A realistic rollout set from the real pipeline: SmolLM2 (one-shot) on 10 arithmetic
problems, cuts every 10% (11) and N = 32: about 3.5k completions of the real workflow.

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

from _common import CACHE, REPO, link_resources, snakemake_cmd

MODEL, DATASET = "smollm2-oneshot", "arith"
# Sized for ~10 minutes of 2 cores; the grading ratio grows with the set (fixed worker start-up).
PROBLEMS, CUTS, N = 10, 11, 32


def real_config() -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["datasets"][DATASET]["n_problems"] = PROBLEMS
    config["prefixes"]["fractions"] = [round(i / (CUTS - 1), 2) for i in range(CUTS)]
    # The grid only: answer cuts sit off the grid and would distort the fitted curve shapes.
    config["prefixes"]["answer_cuts"] = []
    config["rollouts"].update(n=N, shards=1, sampling="fixed")
    config["transfer"]["pairs"] = []
    config["potentials"] = [{"model": MODEL, "datasets": [DATASET]}]
    return config


def ensure_run(run: Path | None) -> Path:
    """A working directory with the real run's results (built if missing)."""
    workdir = run or CACHE / f"real-run-{PROBLEMS}x{CUTS}x{N}"
    target = workdir / "results" / "potentials" / MODEL / f"{DATASET}.parquet"
    if not target.is_file() and not (run is not None and (workdir / "results" / "rollouts" / MODEL / DATASET).is_dir()):
        if run is not None:
            raise SystemExit(f"{target} is missing: --run must be a finished workflow working directory")
        print(f"building the realistic rollout set in {workdir} (the real pipeline, {PROBLEMS} problems x {CUTS} cuts "
              f"x N = {N}; ~10 min on 2 cores)", flush=True)
        workdir.mkdir(parents=True, exist_ok=True)
        link_resources(workdir)
        (workdir / "config.yaml").write_text(yaml.safe_dump(real_config(), sort_keys=False))
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
