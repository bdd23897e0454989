"""Names and seeds derived from the config: filesystem-safe slugs and stable sub-seeds."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def slug(name: str) -> str:
    """A filesystem- and wildcard-safe form of a name: ``Qwen/Qwen2.5-7B`` -> ``qwen-qwen2.5-7b``."""
    out = _UNSAFE.sub("-", name.strip().lower()).strip("-.")
    if not out:
        raise ValueError(f"name {name!r} has no filesystem-safe characters")
    return out


def digest(obj: Any, length: int = 16) -> str:
    """A short, stable hash of a JSON-serialisable object (key order does not matter)."""
    text = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def sub_seed(seed: int, *parts: Any) -> int:
    """A reproducible 31-bit seed for one unit of work, e.g. ``sub_seed(seed, "rollout", shard)``.

    Each job seeds its own engine from the global seed and its identity, so a rerun of one
    shard reproduces exactly that shard, independent of which other jobs ran before it.
    """
    raw = hashlib.sha256(json.dumps([seed, *parts], default=str).encode()).digest()
    return int.from_bytes(raw[:4], "big") & 0x7FFFFFFF
