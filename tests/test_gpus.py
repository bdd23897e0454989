"""GPU placement, tested on CPU: real concurrent processes claim devices through lock files."""

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types

import pytest

from cot_potential import gpus

# A job: claim k devices, note when, hold them a while, note when it lets go.
HOLDER = textwrap.dedent("""
    import json, sys, time
    from cot_potential.gpus import acquire
    k, hold, lock_dir, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
    n_devices = int(sys.argv[5]) if len(sys.argv) > 5 else 4
    placement = acquire(k, devices=[str(i) for i in range(n_devices)], lock_dir=lock_dir, poll_s=0.02)
    start = time.monotonic()
    time.sleep(hold)
    end = time.monotonic()
    with open(out, "w") as f:
        json.dump({"devices": list(placement.devices), "start": start, "end": end}, f)
""")


def test_visible_devices_honors_cuda_visible_devices_then_count_then_list():
    assert gpus.visible_devices({"CUDA_VISIBLE_DEVICES": "3,5, 7", gpus.DEVICES_ENV: "8"}) == ["3", "5", "7"]
    assert gpus.visible_devices({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert gpus.visible_devices({gpus.DEVICES_ENV: "3"}) == ["0", "1", "2"]
    assert gpus.visible_devices({gpus.DEVICES_ENV: "1,4"}) == ["1", "4"]


def test_concurrent_jobs_never_share_a_device(tmp_path):
    """Eight jobs (1 or 2 GPUs each) on 4 devices: any two that held devices at the same time
    held disjoint sets, and the jobs really overlapped (else the check would be empty)."""
    ks = [1, 2, 1, 2, 1, 1, 2, 1]
    procs = [
        subprocess.Popen([sys.executable, "-c", HOLDER, str(k), "0.4", str(tmp_path / "locks"),
                          str(tmp_path / f"job{i}.json")])
        for i, k in enumerate(ks)
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    jobs = [json.loads((tmp_path / f"job{i}.json").read_text()) for i in range(len(ks))]
    for job, k in zip(jobs, ks):
        assert len(set(job["devices"])) == k and set(job["devices"]) <= {"0", "1", "2", "3"}
    overlapping = 0
    for a, b in itertools.combinations(jobs, 2):
        if a["start"] < b["end"] and b["start"] < a["end"]:
            overlapping += 1
            assert not set(a["devices"]) & set(b["devices"]), (a, b)
    assert overlapping >= 3


def test_a_sigkilled_holder_frees_its_devices(tmp_path):
    locks = tmp_path / "locks"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, "2", "600", str(locks), str(tmp_path / "never.json"), "2"],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "held" not in " ".join(gpus.status(["0", "1"], locks).values()):
            time.sleep(0.05)
        assert gpus.status(["0", "1"], locks) == {"0": f"held by pid {holder.pid}", "1": f"held by pid {holder.pid}"}
        with pytest.raises(gpus.PlacementError, match="no 1 free GPU"):
            gpus.acquire(1, devices=["0", "1"], lock_dir=locks, timeout_s=0.2, poll_s=0.05)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        placement = gpus.acquire(2, devices=["0", "1"], lock_dir=locks, timeout_s=10)
        assert placement.devices == ("0", "1")
        placement.release()
    finally:
        if holder.poll() is None:
            os.kill(holder.pid, signal.SIGKILL)


def test_a_released_placement_is_free_again_and_waiters_get_it(tmp_path):
    first = gpus.acquire(1, devices=["0"], lock_dir=tmp_path, timeout_s=1)
    with pytest.raises(gpus.PlacementError):
        gpus.acquire(1, devices=["0"], lock_dir=tmp_path, timeout_s=0.1, poll_s=0.02)
    first.release()
    second = gpus.acquire(1, devices=["0"], lock_dir=tmp_path, timeout_s=1)
    assert second.devices == ("0",)
    second.release()


def test_a_tensor_parallel_job_larger_than_the_machine_fails_clearly(tmp_path):
    with pytest.raises(gpus.PlacementError, match="needs 4 GPU.*only 2 are visible"):
        gpus.acquire(4, devices=["0", "1"], lock_dir=tmp_path)


def test_place_engine_narrows_an_existing_cuda_visible_devices(tmp_path, monkeypatch):
    env = {"CUDA_VISIBLE_DEVICES": "3,5,7", gpus.LOCK_DIR_ENV: str(tmp_path)}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,7")
    placement = gpus.place_engine(2, env)
    try:
        assert placement.devices == ("3", "5")
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "3,5"
    finally:
        placement.release()


def test_no_gpus_means_no_placement(monkeypatch):
    assert gpus.place_engine(1, {"CUDA_VISIBLE_DEVICES": ""}) is None


def test_the_default_lock_dir_is_private_to_a_slurm_job():
    assert gpus.default_lock_dir({"SLURM_JOB_ID": "42"}) != gpus.default_lock_dir({})
    assert str(gpus.default_lock_dir({gpus.LOCK_DIR_ENV: "/x"})) == "/x"


def test_the_engine_sets_its_devices_before_vllm_starts(tmp_path, monkeypatch):
    """The engine claims tensor_parallel_size devices and vLLM sees only them."""
    from cot_potential import engine

    seen = {}

    class FakeLLM:
        def __init__(self, **kwargs):
            seen["devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
            seen["tp"] = kwargs["tensor_parallel_size"]
            self.llm_engine = types.SimpleNamespace(model_config=types.SimpleNamespace(max_model_len=64))

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=FakeLLM))
    monkeypatch.setattr(os, "environ", dict(os.environ))  # the engine also sets VLLM_* variables
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    monkeypatch.setenv(gpus.LOCK_DIR_ENV, str(tmp_path))
    busy = gpus.acquire(1, devices=["0"], lock_dir=tmp_path)  # another job holds GPU 0
    try:
        eng = engine.Engine("m", revision=None, settings=engine.EngineSettings(tensor_parallel_size=2), seed=1)
        assert seen == {"devices": "1,2", "tp": 2}
        eng.placement.release()
    finally:
        busy.release()


def test_cpu_engines_of_fewer_threads_than_cpus_claim_cpus_of_their_own(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    env = {gpus.LOCK_DIR_ENV: str(tmp_path)}
    first, second = gpus.place_cpus(1, env), gpus.place_cpus(2, env)
    assert len(first) == 1 and len(second) == 2 and not set(first) & set(second)
    assert set(first) | set(second) <= {0, 1, 2, 3}
    with pytest.raises(gpus.PlacementError, match="no 2 free CPU"):  # one CPU is left
        gpus.acquire(2, devices=["0", "1", "2", "3"], lock_dir=tmp_path, timeout_s=0.1, poll_s=0.02, kind="CPU")
    assert gpus.place_cpus(4, env) == [0, 1, 2, 3]  # a job of every CPU claims none


def test_a_cpu_engine_binds_vllm_to_the_cpus_it_claimed(tmp_path, monkeypatch):
    from cot_potential import engine

    seen = []

    class FakeLLM:
        def __init__(self, **kwargs):
            seen.append(os.environ["VLLM_CPU_OMP_THREADS_BIND"])
            self.llm_engine = types.SimpleNamespace(model_config=types.SimpleNamespace(max_model_len=64))

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=FakeLLM))
    monkeypatch.setattr(os, "environ", dict(os.environ))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # the CPU backend
    monkeypatch.setenv(gpus.LOCK_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    for _ in range(2):
        engine.Engine("m", revision=None, settings=engine.EngineSettings(), seed=1, threads=1)
    assert sorted(seen) == ["0", "1"]  # two one-thread engines side by side, one core each
    engine.Engine("m", revision=None, settings=engine.EngineSettings(), seed=1, threads=4)
    assert seen[-1] == "0-1"  # as many threads as CPUs: every CPU, nothing claimed
