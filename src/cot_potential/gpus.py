"""Device placement on one machine: every engine job takes GPUs (or CPUs) no other job holds.

``snakemake --resources gpu=8`` only *counts* GPUs: it starts at most 8 GPU jobs at a time
but does not tell a job which device to use, so every job would land on GPU 0. Before it
imports vLLM, an engine job therefore claims ``k`` devices (``k`` = its tensor-parallel size,
the same number its rule requests as ``gpu=k``) and sets ``CUDA_VISIBLE_DEVICES`` to them.

A claim is an exclusive ``flock`` on one lock file per device. Kernel locks belong to the
open file, so they vanish with the process: a job that crashes or is SIGKILLed frees its
GPUs without any cleanup, and no stale lock can ever block a device.

Runtime settings (environment, not experiment config):

- ``CUDA_VISIBLE_DEVICES``, if set (SLURM sets it to the job's allocation), is the set of
  devices to choose from; otherwise ``COT_POTENTIAL_GPUS`` (a count ``8`` or a list ``0,2,3``);
  otherwise the GPUs ``nvidia-smi -L`` lists; none on a CPU machine (then nothing is placed).
- ``COT_POTENTIAL_GPU_LOCK_DIR``: where the lock files live (default below). Jobs that share
  GPUs must share this directory; inside a SLURM job the default is private to that job,
  because SLURM already gave it its own devices (which it may number from 0 in every job).

On the CPU backend an engine job that computes with fewer threads than the machine has CPUs
(``engine.threads``) claims that many CPUs the same way (``place_cpus``) and binds vLLM's
threads to them, so two such jobs, or an engine beside a training job, never share a core.

``python -m cot_potential.gpus`` shows which devices are free and which are held (by PID);
``--count`` prints how many there are (``make run`` gives Snakemake ``--resources gpu=N``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

DEVICES_ENV = "COT_POTENTIAL_GPUS"
LOCK_DIR_ENV = "COT_POTENTIAL_GPU_LOCK_DIR"

# Placements held by this process: the lock files must stay open for the process's lifetime
# (closing them, e.g. by garbage collection, would release the devices to other jobs).
_HELD: list[Placement] = []


class PlacementError(RuntimeError):
    pass


def _nvidia_smi_devices() -> list[str]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [m.group(1) for m in re.finditer(r"^GPU (\d+):", out, re.M)]


def visible_devices(env: Mapping[str, str] | None = None) -> list[str]:
    """The device ids this job may choose from (strings, as ``CUDA_VISIBLE_DEVICES`` has them)."""
    env = os.environ if env is None else env
    if "CUDA_VISIBLE_DEVICES" in env:
        return [d.strip() for d in env["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
    spec = env.get(DEVICES_ENV, "").strip()
    if spec:
        if spec.isdigit():
            return [str(i) for i in range(int(spec))]
        return [d.strip() for d in spec.split(",") if d.strip()]
    return _nvidia_smi_devices()


def default_lock_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(LOCK_DIR_ENV):
        return Path(env[LOCK_DIR_ENV])
    name = f"cot-potential-gpus-{os.getuid()}"
    if env.get("SLURM_JOB_ID"):
        name += f"-slurm-{env['SLURM_JOB_ID']}"
    return Path("/tmp") / name


def _lock_name(device: str, kind: str = "GPU") -> str:
    return kind.lower() + "-" + re.sub(r"[^A-Za-z0-9._-]", "_", device) + ".lock"


@dataclass
class Placement:
    """Devices held by this process until ``release()`` or process exit."""

    devices: tuple[str, ...]
    _files: list[IO[str]] = field(default_factory=list, repr=False)

    @property
    def cuda_visible_devices(self) -> str:
        return ",".join(self.devices)

    def release(self) -> None:
        for handle in self._files:
            handle.close()  # closing the file drops its flock
        self._files = []
        if self in _HELD:
            _HELD.remove(self)


def _try_lock(path: Path) -> IO[str] | None:
    handle = open(path, "a+")  # noqa: SIM115 - held open on purpose: the lock lives with the file
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        handle.close()
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")  # for `python -m cot_potential.gpus`; the lock is the truth
    handle.flush()
    return handle


@contextlib.contextmanager
def _allocator_lock(lock_dir: Path) -> Iterator[None]:
    """One allocation at a time: a job takes all its k devices or none (no hold-and-wait)."""
    with open(lock_dir / "allocator.lock", "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield


def acquire(k: int, *, devices: Sequence[str] | None = None, lock_dir: str | os.PathLike | None = None,
            timeout_s: float | None = None, poll_s: float = 0.5, kind: str = "GPU") -> Placement:
    """Claim ``k`` free devices of ``kind`` (GPU or CPU), waiting while fewer are free (at most
    ``timeout_s``)."""
    devices = list(visible_devices() if devices is None else devices)
    if k < 1:
        raise ValueError(f"a job needs at least one {kind}, got k={k}")
    if k > len(devices):
        raise PlacementError(
            f"the job needs {k} GPU(s) (engine tensor_parallel_size) but only {len(devices)} are "
            f"visible ({devices}); set {DEVICES_ENV} or CUDA_VISIBLE_DEVICES, or lower tensor_parallel_size"
        )
    folder = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    waiting_logged = False
    while True:
        with _allocator_lock(folder):
            held: list[tuple[str, IO[str]]] = []
            for device in devices:
                handle = _try_lock(folder / _lock_name(device, kind))
                if handle is not None:
                    held.append((device, handle))
                    if len(held) == k:
                        break
            if len(held) == k:
                placement = Placement(tuple(d for d, _ in held), [h for _, h in held])
                _HELD.append(placement)
                return placement
            for _, handle in held:
                handle.close()
        if deadline is not None and time.monotonic() >= deadline:
            raise PlacementError(f"no {k} free {kind}(s) among {devices} within {timeout_s} s (locks in {folder})")
        if not waiting_logged:
            log.info("waiting for %d free %s(s) among %s (locks in %s)", k, kind, devices, folder)
            waiting_logged = True
        time.sleep(poll_s)


def place_engine(k: int, env: Mapping[str, str] | None = None) -> Placement | None:
    """Claim ``k`` GPUs for this process and point ``CUDA_VISIBLE_DEVICES`` at them.

    Call before ``import vllm``. On a machine without GPUs (the CPU backend) it does nothing
    and returns ``None``.
    """
    devices = visible_devices(env)
    if not devices:
        return None
    placement = acquire(k, devices=devices, lock_dir=default_lock_dir(env))
    os.environ["CUDA_VISIBLE_DEVICES"] = placement.cuda_visible_devices
    log.info("placed on GPU(s) %s (of %s)", placement.cuda_visible_devices, ",".join(devices))
    return placement


def place_cpus(k: int, env: Mapping[str, str] | None = None) -> list[int]:
    """The CPUs an engine job of ``k`` threads binds to: all this process may run on (its
    affinity set, which SLURM restricts to the job's CPUs) if ``k`` covers them, else ``k`` of
    them claimed for this process's lifetime, waiting while fewer are free."""
    allowed = sorted(os.sched_getaffinity(0))
    if k >= len(allowed):
        return allowed
    placement = acquire(k, devices=[str(cpu) for cpu in allowed], lock_dir=default_lock_dir(env), kind="CPU")
    log.info("placed on CPU(s) %s (of %s)", ",".join(placement.devices), ",".join(map(str, allowed)))
    return [int(cpu) for cpu in placement.devices]


def status(devices: Sequence[str] | None = None, lock_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """``{device: "free" | "held by pid N"}`` (probes each lock without keeping it)."""
    devices = list(visible_devices() if devices is None else devices)
    folder = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    with _allocator_lock(folder):  # a probe must not take a device from an allocation under way
        for device in devices:
            path = folder / _lock_name(device)
            handle = _try_lock(path)
            if handle is not None:
                handle.close()
                out[device] = "free"
            else:
                out[device] = "held by pid " + (path.read_text().strip() or "?")
    return out


def main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - a convenience view
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock-dir", default=None, help=f"default: ${LOCK_DIR_ENV} or {default_lock_dir()}")
    parser.add_argument("--count", action="store_true",
                        help="print only how many GPUs the engine jobs can be placed on (0 without GPUs)")
    args = parser.parse_args(argv)
    devices = visible_devices()
    if args.count:  # `make run` passes it to Snakemake as --resources gpu=N
        print(len(devices))
        return 0
    if not devices:
        print("no GPUs visible (CUDA_VISIBLE_DEVICES, COT_POTENTIAL_GPUS, nvidia-smi)")
        return 0
    for device, state in status(devices, args.lock_dir).items():
        print(f"GPU {device}: {state}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
