"""Cutting traces into prefixes: where to cut, and the exact prompt each prefix continues.

Cuts lie within the *content* tokens (never after the stop token). For reasoning models the
fractions are taken over the thinking span by default. A prefix continues the same
assistant turn: its prompt is the chat-template prompt ids + the trace's first ``t`` ids.

Besides the configured grid, *answer cuts* (``answer_cuts``: token offsets) end just before
the token where the trace first states its final answer as a result (``answer_locator``: a
box, "the answer is", ``= 8`` closing a clause; never the ``2`` of ``x^2`` or ``Step 2``),
and a few tokens before that, so the potential right before the answer (the lucky-guess test
of the dynamics stage) is measured, not interpolated. ``grid_cut``/``answer_cut``/``answer_offset`` say which cut is which;
``cut_index`` numbers all cuts of a trace in token order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from .answer_locator import LOCATOR_VERSION, locate_answer

DEFAULT_FRACTIONS = tuple(i / 20 for i in range(21))


@dataclass(frozen=True)
class CutSettings:
    """Config key ``prefixes``."""

    mode: str = "fraction"  # fraction | stride | boundary
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    stride: int = 32
    max_cuts: int | None = None  # boundary mode: at most this many, evenly spread
    span: str = "auto"  # auto (thinking span for reasoning models) | content | thinking
    answer_cuts: tuple[int, ...] = ()  # tokens before the first statement of the answer (0 = just before)
    answer_cuts_for: str = "correct"  # correct | answered: which traces get answer cuts

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> CutSettings:
        cfg = dict(cfg)
        if "fractions" in cfg:
            cfg["fractions"] = tuple(float(f) for f in cfg["fractions"])
        if "answer_cuts" in cfg:
            cfg["answer_cuts"] = tuple(int(o) for o in cfg["answer_cuts"])
        return cls(**cfg)

    def __post_init__(self) -> None:
        if self.mode not in ("fraction", "stride", "boundary"):
            raise ValueError(f"prefixes.mode must be fraction | stride | boundary, got {self.mode!r}")
        if any(not 0.0 <= f <= 1.0 for f in self.fractions) or not self.fractions:
            raise ValueError("prefixes.fractions must be non-empty and within [0, 1]")
        if self.stride < 1:
            raise ValueError("prefixes.stride must be >= 1")
        if any(o < 0 for o in self.answer_cuts):
            raise ValueError("prefixes.answer_cuts are token offsets >= 0")
        if self.answer_cuts_for not in ("correct", "answered"):
            raise ValueError(f"prefixes.answer_cuts_for must be correct | answered, got {self.answer_cuts_for!r}")


@dataclass(frozen=True)
class Cut:
    token: int  # number of trace tokens kept
    fraction: float  # position within the cut span, in [0, 1]
    nominal: float | None = field(default=None)  # the configured fraction it came from
    grid: bool = True  # on the configured grid (fractions, stride or boundaries)
    answer_offset: int = -1  # an answer cut: tokens before the first statement of the answer


def sentence_boundaries(pieces: list[str]) -> list[int]:
    """Positions just after a token that ends a sentence or a line."""
    out = []
    for i, piece in enumerate(pieces):
        nxt = pieces[i + 1] if i + 1 < len(pieces) else " "
        stripped = piece.rstrip()
        if "\n" in piece or (stripped.endswith((".", "!", "?", ":")) and (piece != stripped or nxt[:1].isspace())):
            out.append(i + 1)
    return out


def cut_points(start: int, stop: int, settings: CutSettings, pieces: list[str] | None = None) -> list[Cut]:
    """Cut positions in ``[start, stop]`` (token indices), de-duplicated, ascending."""
    length = stop - start
    if length < 0:
        raise ValueError(f"empty span [{start}, {stop}]")

    def frac(t: int) -> float:
        return (t - start) / length if length else 1.0

    cuts: dict[int, Cut] = {}
    if settings.mode == "fraction":
        for f in settings.fractions:
            t = start + int(round(f * length))
            cuts.setdefault(t, Cut(t, frac(t), f))
    elif settings.mode == "stride":
        for t in list(range(start, stop, settings.stride)) + [stop]:
            cuts.setdefault(t, Cut(t, frac(t)))
    else:
        if pieces is None:
            raise ValueError("boundary cuts need the decoded token pieces")
        points = [start] + [start + b for b in sentence_boundaries(pieces[start:stop]) if start + b < stop] + [stop]
        if settings.max_cuts and len(points) > settings.max_cuts:
            idx = sorted({round(i * (len(points) - 1) / (settings.max_cuts - 1)) for i in range(settings.max_cuts)})
            points = [points[i] for i in idx]
        for t in points:
            cuts.setdefault(t, Cut(t, frac(t)))
    return [cuts[t] for t in sorted(cuts)]


def token_before_char(tokenizer: Any, ids: list[int], start: int, stop: int, char: int) -> int:
    """The largest ``t`` in ``[start, stop]`` whose decoded prefix ``ids[:t]`` ends at or before
    character ``char``: the cut that keeps everything before that character and none of it."""
    lo, hi = start, stop
    while lo < hi:  # decoded length grows with t: binary search
        mid = (lo + hi + 1) // 2
        if len(tokenizer.decode(ids[:mid], skip_special_tokens=True)) <= char:
            lo = mid
        else:
            hi = mid - 1
    return lo


def answer_token(trace: dict[str, Any], tokenizer: Any, start: int, stop: int) -> int:
    """Index of the token where the trace first states its own final answer as a result
    within the cut span (``answer_locator.locate_answer``), or -1 (no answer, or never
    stated in the span).

    The locator reads the whole content, not only the span: a thinking span ends before the
    answer section, and its boxed answer is what tells the locator that a value stated and
    then checked in the thinking (``x = 7. Check: 3*7 = 21``) was the final answer."""
    answer = trace.get("answer")
    if answer is None or (isinstance(answer, float) and answer != answer):
        return -1
    ids = list(trace["token_ids"])
    text = tokenizer.decode(ids[: max(stop, int(trace.get("content_end", stop)))], skip_special_tokens=True)
    offset = len(tokenizer.decode(ids[:start], skip_special_tokens=True))
    char = locate_answer(text, str(answer), offset)
    if char is None or char >= len(tokenizer.decode(ids[:stop], skip_special_tokens=True)):
        return -1
    return token_before_char(tokenizer, ids, start, stop, char)


def with_answer_cuts(cuts: list[Cut], at: int, start: int, stop: int, settings: CutSettings) -> list[Cut]:
    """The grid cuts plus a cut ``offset`` tokens before the answer token ``at`` for every
    configured offset (clamped to the span); a grid cut at the same token is marked instead."""
    by_token = {c.token: c for c in cuts}
    length = stop - start
    for offset in sorted(set(settings.answer_cuts)):
        t = max(start, at - offset)
        if t in by_token:
            if by_token[t].answer_offset < 0:
                by_token[t] = replace(by_token[t], answer_offset=offset)
        else:
            by_token[t] = Cut(t, (t - start) / length if length else 1.0, None, grid=False, answer_offset=offset)
    return [by_token[t] for t in sorted(by_token)]


def cut_span(trace: dict[str, Any], settings: CutSettings, thinking: bool) -> tuple[int, int]:
    use_thinking = settings.span == "thinking" or (settings.span == "auto" and thinking)
    if use_thinking and trace["think_start"] >= 0:
        return int(trace["think_start"]), int(trace["think_end"])
    return 0, int(trace["content_end"])


def make_prefixes(traces: pd.DataFrame, tokenizer: Any, card: dict[str, Any],
                  settings: CutSettings) -> pd.DataFrame:
    """One row per (trace, cut) with the exact ``prompt_token_ids`` to continue from."""
    rows = []
    for trace in traces.to_dict("records"):
        ids = list(trace["token_ids"])
        start, stop = cut_span(trace, settings, card["thinking"])
        pieces = None
        if settings.mode == "boundary":
            pieces = [tokenizer.decode([i]) for i in ids[:stop]]
        cuts = cut_points(start, stop, settings, pieces)
        at = -1
        wanted = trace.get("correct", False) if settings.answer_cuts_for == "correct" else True
        if settings.answer_cuts and bool(wanted):
            at = answer_token(trace, tokenizer, start, stop)
            if at >= 0:
                cuts = with_answer_cuts(cuts, at, start, stop, settings)
        for cut_index, cut in enumerate(cuts):
            kept = ids[: cut.token]
            text = tokenizer.decode(kept, skip_special_tokens=True)
            rows.append({
                "prefix_id": f"{trace['problem_id']}/{trace['trace_id']}/{cut_index}",
                "problem_id": trace["problem_id"],
                "trace_id": int(trace["trace_id"]),
                "cut_index": cut_index,
                "cut_token": cut.token,
                "cut_fraction": cut.fraction,
                "nominal_fraction": cut.nominal,
                "char_offset": len(text),
                "prompt_token_ids": list(trace["prompt_token_ids"]) + kept,
                "prefix_text": text,
                "max_tokens": max(1, card["max_tokens"] - cut.token),
                "trace_correct": bool(trace.get("correct", False)),
                "grid_cut": cut.grid,
                "answer_cut": cut.answer_offset >= 0,
                "answer_offset": cut.answer_offset,
                "answer_token": at,
            })
    return pd.DataFrame(rows)


def cut_job(card_path: str, traces_path: str, out: str, *, settings: dict[str, Any],
            config: dict[str, Any]) -> None:
    from .models import load_tokenizer
    from .provenance import provenance
    from .tables import read_json, read_table, write_table

    card = read_json(card_path)
    traces = read_table(traces_path)
    prefixes = make_prefixes(traces, load_tokenizer(card), card, CutSettings.from_config(settings))
    write_table(prefixes, out, provenance(config, model=card["name"], model_identity=card["identity"],
                                          prompt_version=card["prompt"].get("version"),
                                          locator_version=LOCATOR_VERSION, cuts=settings,
                                          n_prefixes=len(prefixes), inputs=[traces_path]))
