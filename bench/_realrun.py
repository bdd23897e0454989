"""A realistic rollout set from the real pipeline: SmolLM2 on 16 arithmetic problems, the
paper's grid (every 5%) and N = 64 (about one paper-scale shard: 21.5k completions).

Built once with the workflow itself into ``.cache/bench/real-run`` (about 30-60 minutes on
2 CPU cores); ``--run DIR`` points the benchmarks at any finished run instead.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import yaml

from _common import CACHE, REPO, link_resources, snakemake_cmd

MODEL, DATASET = "smollm2-oneshot", "arith"


def real_config() -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["datasets"][DATASET]["n_problems"] = 16
    config["prefixes"]["fractions"] = [round(i / 20, 2) for i in range(21)]
    config["rollouts"].update(n=64, shards=1)
    config["transfer"]["pairs"] = []
    config["potentials"] = [{"model": MODEL, "datasets": [DATASET]}]
    return config


def ensure_run(run: Path | None) -> Path:
    """A working directory with the real run's results (built if missing)."""
    workdir = run or CACHE / "real-run"
    target = workdir / "results" / "potentials" / MODEL / f"{DATASET}.parquet"
    if not target.is_file() and not (run is not None and (workdir / "results" / "rollouts" / MODEL / DATASET).is_dir()):
        if run is not None:
            raise SystemExit(f"{target} is missing: --run must be a finished workflow working directory")
        print(f"building the realistic rollout set in {workdir} (the real pipeline; ~30-60 min on 2 cores)")
        workdir.mkdir(parents=True, exist_ok=True)
        link_resources(workdir)
        (workdir / "config.yaml").write_text(yaml.safe_dump(real_config(), sort_keys=False))
        subprocess.run(snakemake_cmd(workdir, workdir / "config.yaml", "--cores", "all", str(target.relative_to(workdir))),
                       cwd=workdir, check=True)
    return workdir


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
        "card": json.loads((results / "models" / MODEL / "card.json").read_text()),
    }
