"""An optional automatic labeller for spikes: an LLM judge through the same vLLM ``Engine``.

The judge reads the problem, the text before a spike and the span that caused it, and answers
INSIGHT (the span contains a step that explains the rise: a key idea, the decisive equation)
or JUMP (nothing in the span explains it: trivial arithmetic, restating, formatting). Its
prompt is versioned (``JUDGE_PROMPT_VERSION``, recorded with every label). Its labels feed the
rates only after they agree with human labels (``labels.resolve_labels``).
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from .engine import Engine, Request
from .prompting import encode_text, render_prompt_text

JUDGE_PROMPT_VERSION = "1"
JUDGE_SYSTEM = (
    "You label moments in a model's step-by-step solution where its chance of reaching the "
    "correct answer rose sharply. Answer with one word: INSIGHT or JUMP."
)
JUDGE_USER = (
    "Problem:\n{problem}\n\n"
    "Solution so far:\n{context_before}\n\n"
    "Text written at the moment the chance of success rose from {before:.0%} to {after:.0%}:\n"
    "\u00ab{span}\u00bb\n\n"
    "INSIGHT: this text contains a reasoning step that explains the rise (a key idea, the "
    "decisive equation or deduction). JUMP: nothing in this text explains the rise (trivial "
    "arithmetic, restating, formatting, or the answer with no reasoning).\n"
    "Label (INSIGHT or JUMP):"
)
_LABEL = re.compile(r"\b(insight|jump)\b", re.I)
JUDGE_COLUMNS = ("event_id", "label", "raw", "judge_model", "prompt_version")


def judge_messages(row: dict[str, Any]) -> list[dict[str, str]]:
    def text(name: str, empty: str = "") -> str:
        value = row.get(name)
        return value if isinstance(value, str) and value else empty

    user = JUDGE_USER.format(problem=text("problem"), context_before=text("context_before", "(start)"),
                             before=float(row["potential_before"]), after=float(row["potential_after"]),
                             span=text("span_text"))
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def parse_label(text: str) -> str | None:
    """The first INSIGHT or JUMP in the judge's reply (``None`` if it gave neither)."""
    match = _LABEL.search(text or "")
    return match.group(1).lower() if match else None


def judge_spikes(engine: Engine, tokenizer: Any, card: dict[str, Any], annotations: pd.DataFrame,
                 max_tokens: int = 8) -> pd.DataFrame:
    """One greedy reply per spike; ``label`` is insight | jump | None (unparsable reply)."""
    rows = annotations.to_dict("records")
    prompts = [encode_text(tokenizer, render_prompt_text(tokenizer, judge_messages(r), card["chat_template_kwargs"]))
               for r in rows]
    outputs = engine.generate([Request(ids, 1, max_tokens) for ids in prompts], {"temperature": 0.0})
    replies = [out[0].text for out in outputs]
    return pd.DataFrame({
        "event_id": [r["event_id"] for r in rows],
        "label": [parse_label(t) for t in replies],
        "raw": replies,
        "judge_model": card["name"],
        "prompt_version": JUDGE_PROMPT_VERSION,
    }, columns=list(JUDGE_COLUMNS))


def judge_job(card_path: str, annotations_path: str, out: str, *, seed: int, max_tokens: int,
              threads: int, config: dict[str, Any]) -> None:
    """Rule judge_spikes: the judge's label for every spike of a run."""
    import logging

    from .engine import engine_for
    from .models import load_tokenizer
    from .provenance import provenance
    from .tables import read_json, read_table, write_table

    card = read_json(card_path)
    annotations = read_table(annotations_path)
    if annotations.empty:
        labels = pd.DataFrame(columns=list(JUDGE_COLUMNS))
    else:
        labels = judge_spikes(engine_for(card, seed, threads), load_tokenizer(card), card, annotations, max_tokens)
    logging.getLogger(__name__).info("judge %s labelled %d spikes: %s", card["name"], len(labels),
                                     labels["label"].value_counts(dropna=False).to_dict())
    write_table(labels, out, provenance(config, judge_model=card["name"], judge_identity=card["identity"],
                                        prompt_version=JUDGE_PROMPT_VERSION, seed=seed,
                                        inputs=[annotations_path]))
