"""An optional automatic labeller for spikes and drops: an LLM judge through the same vLLM ``Engine``.

The judge reads the problem, the text before an event and the span that caused it. A spike it
labels INSIGHT (the span contains a step that explains the rise: a key idea, the decisive
equation) or JUMP (nothing in the span explains it: trivial arithmetic, restating,
formatting). A drop it labels FLAW (the span contains a mistake), TANGENT (no mistake, the
solution wanders off) or OTHER. The criteria are those of docs/dynamics.md. Each prompt is
versioned (``PROMPT_VERSIONS``, recorded with every label). Its labels feed the rates only
after they agree with human labels on that kind of event (``labels.resolve_labels``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .engine import Engine, Request
from .prompting import encode_text, render_prompt_text


@dataclass(frozen=True)
class JudgePrompt:
    version: str
    system: str
    user: str
    labels: tuple[str, ...]

    def parse(self, text: str | None) -> str | None:
        """The first of this prompt's labels in the judge's reply (``None`` if it gave none)."""
        match = re.search(r"\b(" + "|".join(self.labels) + r")\b", text or "", re.I)
        return match.group(1).lower() if match else None


SPIKE_PROMPT = JudgePrompt(
    version="1",
    system=("You label moments in a model's step-by-step solution where its chance of reaching the "
            "correct answer rose sharply. Answer with one word: INSIGHT or JUMP."),
    user=("Problem:\n{problem}\n\n"
          "Solution so far:\n{context_before}\n\n"
          "Text written at the moment the chance of success rose from {before:.0%} to {after:.0%}:\n"
          "\u00ab{span}\u00bb\n\n"
          "INSIGHT: this text contains a reasoning step that explains the rise (a key idea, the "
          "decisive equation or deduction). JUMP: nothing in this text explains the rise (trivial "
          "arithmetic, restating, formatting, or the answer with no reasoning).\n"
          "Label (INSIGHT or JUMP):"),
    labels=("insight", "jump"),
)
DROP_PROMPT = JudgePrompt(
    version="1",
    system=("You label moments in a model's step-by-step solution where its chance of reaching the "
            "correct answer fell sharply. Answer with one word: TANGENT, FLAW or OTHER."),
    user=("Problem:\n{problem}\n\nCorrect final answer: {gold}\n\n"
          "Solution so far:\n{context_before}\n\n"
          "Text written at the moment the chance of success fell from {before:.0%} to {after:.0%}:\n"
          "\u00ab{span}\u00bb\n\n"
          "FLAW: this text contains a mistake one can point to (an arithmetic or algebra error, a "
          "wrong formula or fact, a misreading of the problem, a deduction that does not follow, a "
          "wrong answer). TANGENT: no mistake, but the solution wanders off (it starts an approach "
          "or a case that does not lead to the answer, switches method, digresses, restarts, doubts "
          "a correct path, or repeats itself). OTHER: neither (a correct step on the path, "
          "restating, formatting, or garbled text).\n"
          "Label (TANGENT, FLAW or OTHER):"),
    labels=("tangent", "flaw", "other"),
)
PROMPTS = {"spike": SPIKE_PROMPT, "drop": DROP_PROMPT}
PROMPT_VERSIONS = {kind: prompt.version for kind, prompt in PROMPTS.items()}
# One string for provenance and the rule's params: a new prompt of either kind reruns the judge.
PROMPT_VERSION = "+".join(f"{kind}-{version}" for kind, version in PROMPT_VERSIONS.items())
JUDGE_COLUMNS = ("event_id", "kind", "label", "raw", "judge_model", "prompt_version")


def judge_messages(row: dict[str, Any]) -> list[dict[str, str]]:
    """The judge's chat for one annotation row (its ``kind`` picks the prompt; spike if absent)."""
    def text(name: str, empty: str = "") -> str:
        value = row.get(name)
        return value if isinstance(value, str) and value else empty

    prompt = PROMPTS[row.get("kind") or "spike"]
    user = prompt.user.format(problem=text("problem"), gold=text("gold", "(not given)"),
                              context_before=text("context_before", "(start)"),
                              before=float(row["potential_before"]), after=float(row["potential_after"]),
                              span=text("span_text"))
    return [{"role": "system", "content": prompt.system}, {"role": "user", "content": user}]


def parse_label(text: str | None, kind: str = "spike") -> str | None:
    """The first label of ``kind``'s prompt in the judge's reply (``None`` if it gave none)."""
    return PROMPTS[kind].parse(text)


def judge_events(engine: Engine, tokenizer: Any, card: dict[str, Any], annotations: pd.DataFrame,
                 max_tokens: int = 8) -> pd.DataFrame:
    """One greedy reply per spike or drop; ``label`` is one of its kind's labels or None
    (unparsable reply)."""
    rows = annotations.to_dict("records")
    kinds = [r.get("kind") or "spike" for r in rows]
    prompts = [encode_text(tokenizer, render_prompt_text(tokenizer, judge_messages(r), card["chat_template_kwargs"]))
               for r in rows]
    outputs = engine.generate([Request(ids, 1, max_tokens) for ids in prompts], {"temperature": 0.0})
    replies = [out[0].text for out in outputs]
    return pd.DataFrame({
        "event_id": [r["event_id"] for r in rows],
        "kind": kinds,
        "label": [parse_label(t, k) for t, k in zip(replies, kinds)],
        "raw": replies,
        "judge_model": card["name"],
        "prompt_version": [PROMPTS[k].version for k in kinds],
    }, columns=list(JUDGE_COLUMNS))


def judge_job(card_path: str, annotations_path: str, out: str, *, seed: int, max_tokens: int,
              threads: int, config: dict[str, Any]) -> None:
    """Rule judge_events: the judge's label for every spike and drop of a run."""
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
        labels = judge_events(engine_for(card, seed, threads), load_tokenizer(card), card, annotations, max_tokens)
    logging.getLogger(__name__).info("judge %s labelled %d events: %s", card["name"], len(labels),
                                     labels.groupby("kind")["label"].value_counts(dropna=False).to_dict())
    write_table(labels, out, provenance(config, judge_model=card["name"], judge_identity=card["identity"],
                                        prompt_version=PROMPT_VERSION, seed=seed, inputs=[annotations_path]))
