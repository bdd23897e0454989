"""Our versioned answer extractor: which string of a completion is *the* answer.

Only the string this returns is ever shown to math-verify; math-verify's own fallback of
"first expression anywhere in the text" would grade an echoed ``3 * 8`` as an answer.

Bump ``EXTRACTOR_VERSION`` whenever the behaviour changes, here or in the comparison rules
of ``grading_worker`` (the grading form below, the relative tolerance): it is part of the
grader's version, so the workflow regrades exactly the affected results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# 2: answers and golds are compared in their grading form, numbers within a relative tolerance.
EXTRACTOR_VERSION = "2"

_BOX_OPENERS = ("\\boxed", "\\fbox")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
# A sentence's full stop inside the box: "104." (never the dots of "\ldots" or "1, 2, ...").
_FULL_STOP = re.compile(r"(?<=[^.\\])\.$")
# A number set in text, as AIME solutions box it: \textbf{(073)}, \text{ 42 }.
_NUMBER_IN_TEXT = re.compile(r"\\(?:text|textbf|mathbf|mathrm)\s*\{\s*(\(?)\s*(-?\d[\d,]*(?:\.\d+)?)\s*(\)?)\s*\}")
# Scientific notation as programs write it: 1e-7, 2.5E+3 (math-verify reads 1e-7 as 1*e - 7).
_E_NOTATION = re.compile(r"([+-]?\d+(?:\.\d*)?)[eE]([+-]?\d+)")
# The largest answer we pass on; longer "answers" are junk and only cost grading time.
MAX_ANSWER_CHARS = 2000


@dataclass(frozen=True)
class Extraction:
    answer: str | None
    reason: str  # "boxed" | "last_number" | "truncated" | "no_box" | "empty_box" | "unfinished_thinking"


def assistant_text(text: str, stop_strings: tuple[str, ...] = ()) -> str:
    """The assistant's text up to the first stop string (an end-of-turn marker)."""
    end = len(text)
    for stop in stop_strings:
        if stop:
            pos = text.find(stop)
            if 0 <= pos < end:
                end = pos
    return text[:end]


def last_boxed(text: str) -> str | None:
    """Content of the ``\\boxed{...}`` that closes last, with balanced braces, in one pass.

    Escaped braces (``\\{``) do not count. Unbalanced (e.g. truncated) boxes are skipped, so
    ``\\boxed{3} ... \\boxed{4`` gives ``3``. For nested boxes the outer one closes last.
    Linear time, so a megabyte of ``\\boxed{`` is no threat.
    """
    stack: list[int] = []  # for each open brace: start of box content, or -1 for a plain brace
    best: tuple[int, int] | None = None
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            for opener in _BOX_OPENERS:
                if text.startswith(opener, i):
                    j = i + len(opener)
                    while j < n and text[j] == " ":
                        j += 1
                    if j < n and text[j] == "{":
                        stack.append(j + 1)
                        i = j + 1
                        break
            else:
                i += 2  # skip the escaped character, e.g. "\{"
                continue
            continue
        if ch == "{":
            stack.append(-1)
        elif ch == "}" and stack:
            start = stack.pop()
            if start >= 0:
                best = (start, i)
        i += 1
    if best is None:
        return None
    return text[best[0] : best[1]]


def last_number(text: str) -> str | None:
    numbers = _NUMBER.findall(text)
    return numbers[-1].rstrip(".,") if numbers else None


def extract_answer(
    text: str,
    *,
    finish_reason: str | None = None,
    stop_strings: tuple[str, ...] = (),
    thinking: bool = False,
    unboxed: str = "no_answer",
) -> Extraction:
    """Extract the final answer of an assistant turn.

    - the text is cut at the first stop string;
    - a completion cut off by the length limit has no answer (``truncated``);
    - for reasoning models only the text after the last ``</think>`` counts; without one the
      model never finished thinking;
    - the answer is the content of the last balanced ``\\boxed{}``; with no box it is
      ``no_answer``, unless ``unboxed="last_number"`` (for models that do not box).
    """
    if finish_reason == "length":
        return Extraction(None, "truncated")
    text = assistant_text(text, stop_strings)
    if thinking:
        pos = text.rfind("</think>")
        if pos < 0:
            return Extraction(None, "unfinished_thinking")
        text = text[pos + len("</think>") :]
    boxed = last_boxed(text)
    if boxed is not None:
        boxed = boxed.strip()
        if not boxed:
            return Extraction(None, "empty_box")
        return Extraction(unicode_text(boxed[:MAX_ANSWER_CHARS]), "boxed")
    if unboxed == "last_number":
        number = last_number(text)
        if number is not None:
            return Extraction(number, "last_number")
    elif unboxed != "no_answer":
        raise ValueError(f"unboxed must be 'no_answer' or 'last_number', got {unboxed!r}")
    return Extraction(None, "no_box")


def unicode_text(text: str) -> str:
    """``text`` with lone surrogates (text decoded with ``surrogateescape``, or a JSON
    ``"\ud800"`` escape) replaced by U+FFFD: an answer must be writable as UTF-8, or a single
    hostile completion would crash the job that writes the grades. vLLM's own text never has
    them, so no verdict written before this existed can change."""
    return _SURROGATE.sub("\ufffd", text)


def grading_form(answer: str) -> str:
    """The form of an answer (or gold) that math-verify is shown: formatting that states the
    same value is undone, so that it grades like the plain value.

    - a full stop closing the box: ``104.`` is ``104``;
    - a number set in text, in parentheses or not: ``\\textbf{(073)}`` is ``073`` (AIME);
    - a whole answer in e-notation: ``1e-7`` is ``1\\times10^{-7}``. Only a whole answer:
      inside an expression ``2e-7`` may mean 2e - 7 (Euler's number).
    """
    form = _FULL_STOP.sub("", answer.strip()).strip()
    text = _NUMBER_IN_TEXT.fullmatch(form)
    if text and bool(text.group(1)) == bool(text.group(3)):  # parentheses, if any, balance
        form = text.group(2)
    sci = _E_NOTATION.fullmatch(form)
    if sci:
        form = f"{sci.group(1)}\\times10^{{{sci.group(2)}}}"
    return form


def normalize_answer(answer: str | None) -> str | None:
    """A display/counting key for answer distributions (not used for grading)."""
    if answer is None:
        return None
    return re.sub(r"\s+", "", answer)
