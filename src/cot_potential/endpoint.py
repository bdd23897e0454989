"""An OpenAI-compatible endpoint: where it is, how to call it (retries, backoff, the API key),
and what it says about itself. Standard library only (no vLLM), so that writing a model card
for a served model needs nothing of the engine's environment. Used by ``server.py``.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
    def from_engine(cls, engine: Mapping[str, Any], weights: str) -> Endpoint:
        """The endpoint of a model's engine settings (``engine.base_url``, ``served_model``, ...)."""
        if not engine.get("base_url"):
            raise ValueError("engine.backend is openai but engine.base_url is not set")
        given = {"api_key_env": engine.get("api_key_env"), "timeout_s": engine.get("request_timeout_s"),
                 "retries": engine.get("max_retries"), "backoff_s": engine.get("retry_backoff_s")}
        return cls(base_url=engine["base_url"].rstrip("/"), model=engine.get("served_model") or weights,
                   **{k: v for k, v in given.items() if v is not None})

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
            except (OSError, http.client.HTTPException) as error:  # refused, reset, timed out, cut off
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
