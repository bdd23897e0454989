"""CoT transferability: a target model continues a source's partial chain of thought.

The source's trace (another model's, or a human solution) is cut at fractions of its
units (tokens for a model source, words for imported text), the cut snapped to a whitespace
boundary (the actual fraction is recorded). Of a thinking source only the thinking span is
cut and placed (``transfer.placed_span``), never its final answer section; stripped of the
source's thinking tags, it is placed
at the beginning of the *target's* own assistant turn under the target's chat template. The
result is an ordinary prefix table, so rollouts, grading and potentials are the pipeline's
own stages.

Conditions (the controls answer "does the content of the trace matter, or its presence?"):

- ``source``: the source's CoT of this problem;
- ``own``: the target's own trace of this problem, cut the same way;
- ``reasonless``: the source's CoT of a *different* problem of the dataset (a seeded
  derangement), matched in units to the real prefix;
- ``shuffled``: the real prefix with its sentences in a seeded random order;
- ``filler``: neutral text (``transfer.filler_text`` repeated) of as many target tokens as
  the real prefix: tells "any text in the turn helps" apart from "this reasoning helps";
- ``alone``: f = 0 with ``alone_factor`` x N samples: an independent batch that decides which
  problems the target cannot solve alone;
- ``floor``: f = 0 with N fresh samples: the noise floor of "unlocking" (problems picked as
  unsolved on one batch look partly solved on the next: regression to the mean).
"""

from __future__ import annotations

import bisect
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .answer_locator import LOCATOR_VERSION, states_answer
from .answers import last_boxed
from .prompting import build_messages, encode_text, render_prompt_text

CONDITIONS = ("source", "own", "reasonless", "shuffled", "filler")
BASELINES = ("alone", "floor")
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
PLACED_SPANS = ("thinking", "whole")
_WORD = re.compile(r"\S+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+|\s+(?=(?:and|so|then|which|because)\b)")


@dataclass(frozen=True)
class SourceText:
    """A trace as text with the end offsets of its units (tokens or words)."""

    problem_id: str
    trace_id: int
    text: str
    ends: tuple[int, ...]
    correct: bool | None

    @property
    def n_units(self) -> int:
        return len(self.ends)


def strip_thinking_tags(text: str) -> str:
    """The CoT without the source's own ``<think>``/``</think>`` tags."""
    return text.replace(THINK_OPEN, "").replace(THINK_CLOSE, "").strip()


def thinking_text(text: str) -> str:
    """The thinking span of a thinking model's trace: what precedes ``</think>`` (all of an
    unclosed block, as a truncated trace leaves it), without the tags; the final answer
    section after ``</think>`` is dropped, so no fraction hands over the written answer."""
    return strip_thinking_tags(text.split(THINK_CLOSE, 1)[0])


def placed_text(text: str, thinking: bool, span: str) -> str:
    """What of a trace is placed: the thinking span of a thinking model (``span: thinking``)
    or the whole trace without its tags (``span: whole``, and every non-thinking source)."""
    if span not in PLACED_SPANS:
        raise ValueError(f"transfer.placed_span must be one of {PLACED_SPANS}, got {span!r}")
    return thinking_text(text) if thinking and span == "thinking" else strip_thinking_tags(text)


def word_ends(text: str) -> tuple[int, ...]:
    return tuple(m.end() for m in _WORD.finditer(text))


def token_ends(tokenizer: Any, text: str) -> tuple[int, ...]:
    """End offsets of the tokenizer's tokens of ``text`` (fast tokenizers give offsets)."""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return tuple(end for _, end in offsets if end > 0)


def snap_to_whitespace(text: str, ends: Sequence[int], units: int) -> tuple[int, int]:
    """Cut ``text`` after about ``units`` units, at the nearest whitespace boundary.

    Returns ``(char position, units actually kept)``. Ties go to the earlier boundary, so a
    cut never takes more text than asked for unless the later boundary is strictly closer.
    """
    if units <= 0 or not ends:
        return 0, 0
    target = ends[min(units, len(ends)) - 1]
    boundaries = word_ends(text)
    i = bisect.bisect_left(boundaries, target)
    candidates = [b for b in (boundaries[i - 1] if i > 0 else None,
                              boundaries[i] if i < len(boundaries) else None) if b is not None]
    pos = min(candidates, key=lambda b: (abs(b - target), b))
    return pos, bisect.bisect_right(ends, pos)


def cut_source(source: SourceText, fraction: float) -> tuple[str, int]:
    """The first ``fraction`` of a source text, snapped: ``(text, units kept)``."""
    pos, kept = snap_to_whitespace(source.text, source.ends, int(round(fraction * source.n_units)))
    return source.text[:pos], kept


def cut_units(source: SourceText, units: int) -> tuple[str, int]:
    pos, kept = snap_to_whitespace(source.text, source.ends, units)
    return source.text[:pos], kept


def derangement(items: Sequence[str], seed: int) -> dict[str, str]:
    """A seeded permutation without fixed points (Sattolo's algorithm: one random cycle)."""
    items = sorted(items)
    if len(items) < 2:
        raise ValueError("the reasonless control needs at least two problems")
    order = list(items)
    rng = random.Random(seed)
    for i in range(len(order) - 1, 0, -1):
        j = rng.randrange(i)
        order[i], order[j] = order[j], order[i]
    return dict(zip(items, order))


def shuffle_sentences(text: str, rng: random.Random) -> tuple[str, str]:
    """The same text with its pieces in a random order: ``(text, unit)``.

    Sentences are shuffled; a prefix of a single sentence (common at small fractions) has its
    clauses shuffled, and one without clauses its words, so the control never silently
    equals the real prefix. ``unit`` says which (``none`` for a single word).
    """
    for unit, pieces in (("sentence", _SENTENCE_END.split(text)), ("clause", _CLAUSE_END.split(text)),
                         ("word", text.split())):
        pieces = [p.strip() for p in pieces if p and p.strip()]
        if len(pieces) >= 2 and len(set(pieces)) >= 2:
            shuffled = list(pieces)
            while shuffled == pieces:
                rng.shuffle(shuffled)
            return " ".join(shuffled), unit
    return text, "none"


def default_placement(card: dict[str, Any]) -> str:
    return card.get("placement") or ("think" if card["thinking"] else "answer")


def place(tokenizer: Any, card: dict[str, Any], problem: str, text: str,
          placement: str | None = None) -> tuple[str, str]:
    """``(prompt text, assistant prefix)``: ``text`` at the start of the target's own turn.

    ``think`` puts it inside the target's thinking block; ``answer`` in its answer (a thinking
    target whose template left thinking open gets an empty, closed thinking block first, as
    Qwen3's template renders it with thinking off).
    """
    placement = placement or default_placement(card)
    prompt = render_prompt_text(tokenizer, build_messages(card["prompt"], problem),
                                card["chat_template_kwargs"])
    if not text:
        return prompt, ""
    thinking_open = card["thinking"] and not prompt.rstrip().endswith(THINK_CLOSE)
    if placement == "think":
        if not card["thinking"]:
            raise ValueError(f"model {card['name']!r} does not think: placement 'think' is impossible")
        opener = "" if prompt.rstrip().endswith(THINK_OPEN) else THINK_OPEN + "\n"
        return prompt, opener + text
    if placement != "answer":
        raise ValueError(f"placement must be 'think' or 'answer', got {placement!r}")
    if thinking_open:
        return prompt, f"{THINK_OPEN}\n\n{THINK_CLOSE}\n\n{text}"
    return prompt, text


def states_gold(text: str, gold: str) -> bool:
    """The prefix already states the gold answer as a result (the answer locator of the
    prefix stage's answer cuts: ``= 7 apples``, "the answer is 7"; not the ``7`` of ``x^7``
    or ``Step 7``)."""
    return states_answer(text, gold)


def source_texts_from_traces(traces: pd.DataFrame, tokenizer: Any | None, *, thinking: bool = False,
                             span: str = "thinking") -> list[SourceText]:
    """Source units: the model's own tokens when its tokenizer is given, else words; the text
    is what ``placed_text`` keeps of each trace (its thinking span for a thinking model)."""
    out = []
    for row in traces.to_dict("records"):
        text = placed_text(row["text"], thinking, span)
        ends = token_ends(tokenizer, text) if tokenizer is not None else word_ends(text)
        out.append(SourceText(row["problem_id"], int(row["trace_id"]), text, ends,
                              None if pd.isna(row.get("correct")) else bool(row.get("correct"))))
    return out


def build_prefixes(
    problems: pd.DataFrame,
    sources: list[SourceText],
    own: list[SourceText],
    tokenizer: Any,
    card: dict[str, Any],
    *,
    fractions: Sequence[float],
    conditions: Sequence[str],
    n: int,
    alone_factor: int,
    seed: int,
    budget: int | None = None,
    filler_text: str = "",
) -> pd.DataFrame:
    """The transfer prefix table of one (pair, dataset): every condition and fraction.

    Every prefix, f = 0 included, gives the target the same ``budget`` of new tokens (None:
    its L_max), so a longer placed prefix never shortens what the target may write.
    """
    unknown = set(conditions) - set(CONDITIONS)
    if unknown:
        raise ValueError(f"unknown transfer conditions {sorted(unknown)}; known: {CONDITIONS}")
    problem_text = problems.set_index("problem_id")["problem"]
    by_problem: dict[str, list[SourceText]] = {}
    for s in sources:
        by_problem.setdefault(s.problem_id, []).append(s)
    own_by_problem = {s.problem_id: s for s in sorted(own, key=lambda s: -s.trace_id)}
    ids = sorted(set(by_problem) & set(problem_text.index))
    donors = derangement(ids, seed) if "reasonless" in conditions else {}
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []

    def add(problem_id, condition, fraction, placed, *, trace, kept, total, n_samples, donor_problem_id=None,
            shuffle_unit=None):
        prompt, assistant = place(tokenizer, card, problem_text[problem_id], placed)
        rows.append({
            "prefix_id": f"{problem_id}/{condition}/{trace}/{fraction:g}",
            "problem_id": problem_id,
            "condition": condition,
            "source_trace_id": trace,
            "fraction": float(fraction),
            "actual_fraction": kept / total if total else 0.0,
            "prefix_units": kept,
            "donor_problem_id": donor_problem_id,
            "shuffle_unit": shuffle_unit,
            "prompt_token_ids": encode_text(tokenizer, prompt + assistant),
            "prefix_text": assistant,
            "n": n_samples,
        })

    filler = filler_source(tokenizer, filler_text, max((s.text for s in sources), key=len, default="")) \
        if "filler" in conditions else None
    for pid in ids:
        add(pid, "alone", 0.0, "", trace=-1, kept=0, total=0, n_samples=alone_factor * n)
        add(pid, "floor", 0.0, "", trace=-1, kept=0, total=0, n_samples=n)
        for src in by_problem[pid]:
            donor = by_problem[donors[pid]][0] if donors else None
            for f in (f for f in fractions if f > 0):  # f = 0 is the same empty prefix for all: the floor
                for condition, placed, kept, extra in cut_conditions(src, f, conditions, rng, donor, filler, tokenizer):
                    add(pid, condition, f, placed, trace=src.trace_id, kept=kept, total=src.n_units,
                        n_samples=n, **extra)
            if "own" in conditions and pid in own_by_problem and src is by_problem[pid][0]:
                mine = own_by_problem[pid]
                for f in fractions:
                    if f > 0:
                        text, kept = cut_source(mine, f)
                        add(pid, "own", f, text, trace=mine.trace_id, kept=kept, total=mine.n_units, n_samples=n)
    prefixes = pd.DataFrame(rows)
    prefixes["budget"] = int(budget or card["max_tokens"])
    prefixes["max_tokens"] = [fitted_budget(int(budget or card["max_tokens"]), len(ids), card)
                              for ids in prefixes["prompt_token_ids"]]
    prefixes["budget_cut"] = prefixes["max_tokens"] < prefixes["budget"]
    prefixes["trace_correct"] = _placed_trace_correct(prefixes, by_problem, own_by_problem)
    return prefixes


def cut_conditions(src: SourceText, fraction: float, conditions: Sequence[str], rng: random.Random,
                   donor: SourceText | None, filler: SourceText | None, tokenizer: Any):
    """The placed texts of one source trace at one fraction, per condition other than
    ``own``: ``(condition, text, units kept, extra columns)``."""
    text, kept = cut_source(src, fraction)
    if "source" in conditions:
        yield "source", text, kept, {}
    if "shuffled" in conditions:
        shuffled, unit = shuffle_sentences(text, rng)
        yield "shuffled", shuffled, kept, {"shuffle_unit": unit}
    if "reasonless" in conditions:
        other, other_kept = cut_units(donor, kept)
        yield "reasonless", other, other_kept, {"donor_problem_id": donor.problem_id}
    if "filler" in conditions:
        # as many of the *target's* tokens as the placed prefix: what the target reads
        neutral, _ = cut_units(filler, len(encode_text(tokenizer, text)))
        yield "filler", neutral, kept, {}


def filler_source(tokenizer: Any, sentence: str, longest: str) -> SourceText:
    """Neutral text (``sentence`` repeated) at least as long as the longest source text, in
    the target's tokens, to cut length-matched filler prefixes from."""
    sentence = sentence.strip() + " "
    copies = 2 + 2 * len(longest) // max(1, len(sentence))
    text = (sentence * copies).strip()
    return SourceText("filler", -1, text, token_ends(tokenizer, text), None)


def fitted_budget(budget: int, prompt_tokens: int, card: dict[str, Any]) -> int:
    """The budget, cut only where prompt + prefix + budget would overflow the target's
    ``max_model_len`` (the config check plans against that; a cross-tokenizer prefix or a long
    problem can still exceed the plan, and ``budget_cut`` records it)."""
    context = (card.get("engine") or {}).get("max_model_len")
    return max(1, min(budget, context - prompt_tokens)) if context else budget


def _placed_trace_correct(prefixes: pd.DataFrame, by_problem: dict[str, list[SourceText]],
                          own_by_problem: dict[str, SourceText]) -> list[Any]:
    """Whether the trace whose text is placed was itself correct (None for f = 0 baselines)."""
    source_correct = {(s.problem_id, s.trace_id): s.correct for group in by_problem.values() for s in group}
    out = []
    for condition, pid, trace, donor in zip(prefixes["condition"], prefixes["problem_id"],
                                            prefixes["source_trace_id"], prefixes["donor_problem_id"]):
        if condition in BASELINES or condition == "filler":
            out.append(None)
        elif condition == "own":
            out.append(own_by_problem[pid].correct)
        elif condition == "reasonless":
            out.append(by_problem[donor][0].correct)
        else:
            out.append(source_correct[(pid, trace)])
    return out


def flag_answer_leaks(prefixes: pd.DataFrame, problems: pd.DataFrame, verify) -> pd.Series:
    """True where the prefix already gives the gold answer: as its last ``\\boxed{}`` (checked
    with ``verify``, a ``GraderPool.verify``) or stated as a result (``states_gold``)."""
    gold = problems.set_index("problem_id")["answer"]
    boxed = [last_boxed(t) for t in prefixes["prefix_text"]]
    pairs = [(gold[p], b) for p, b in zip(prefixes["problem_id"], boxed) if b]
    verdicts = iter(verify(pairs))
    leaks = []
    for pid, text, box in zip(prefixes["problem_id"], prefixes["prefix_text"], boxed):
        boxed_gold = next(verdicts) == "correct" if box else False
        leaks.append(bool(boxed_gold or states_gold(text, gold[pid])))
    return pd.Series(leaks, index=prefixes.index)


def prefixes_job(*, problems_path: str, target_card_path: str, source_traces_path: str | None,
                 source_card_path: str | None, own_traces_path: str | None,
                 imported: dict[str, Any] | None, out: str, fractions: Sequence[float],
                 conditions: Sequence[str], n: int, alone_factor: int, seed: int,
                 grading: dict[str, Any], config: dict[str, Any], budget: int | None = None,
                 placed_span: str = "thinking", filler_text: str = "") -> None:
    """Rule transfer_prefixes: the prefix table of one (pair, dataset)."""
    import logging

    from .grading import GraderPool, GradingSettings
    from .models import load_tokenizer
    from .provenance import provenance
    from .tables import read_json, read_table, write_table
    from .traces import imported_texts

    problems = read_table(problems_path)
    target_card = read_json(target_card_path)
    target_tokenizer = load_tokenizer(target_card)
    if imported is not None:
        texts = imported_texts(imported, problems).assign(trace_id=0, correct=None)
        sources = source_texts_from_traces(texts, None)
    else:
        source_card = read_json(source_card_path)
        sources = source_texts_from_traces(read_table(source_traces_path), load_tokenizer(source_card),
                                           thinking=source_card["thinking"], span=placed_span)
    own = (source_texts_from_traces(read_table(own_traces_path), target_tokenizer,
                                    thinking=target_card["thinking"], span=placed_span)
           if own_traces_path else [])
    prefixes = build_prefixes(problems, sources, own, target_tokenizer, target_card,
                              fractions=fractions, conditions=conditions, n=n,
                              alone_factor=alone_factor, seed=seed, budget=budget, filler_text=filler_text)
    with GraderPool(GradingSettings.from_config(grading)) as pool:
        prefixes["answer_leak"] = flag_answer_leaks(prefixes, problems, pool.verify)
    logging.getLogger(__name__).info(
        "%d transfer prefixes for %d problems; %d state the answer already; %d have their budget "
        "of %d cut by the context", len(prefixes), prefixes["problem_id"].nunique(),
        int(prefixes["answer_leak"].sum()), int(prefixes["budget_cut"].sum()), int(prefixes["budget"].iloc[0]))
    from .grading import grader_version

    tables = [problems_path, *(p for p in (source_traces_path, own_traces_path) if p)]
    write_table(prefixes, out, provenance(config, target=target_card["name"],
                                          target_identity=target_card["identity"], seed=seed,
                                          model=target_card["name"], model_identity=target_card["identity"],
                                          prompt_version=target_card["prompt"].get("version"),
                                          grader_version=grader_version("math"),
                                          locator_version=LOCATOR_VERSION, fractions=list(fractions), conditions=list(conditions),
                                          inputs=tables))
