"""Where a text first states its final answer as a result.

``locate_answer(text, answer)`` is the character offset of the first character of the answer
expression at the place where the text first *states* it as a result, or ``None``. The
answer cuts of the prefix stage and the transfer leak flag both use it.

A bare occurrence of the answer's characters is not a statement: ``3`` in ``(x-3)`` or
``13``, ``2`` in ``x^2``, ``Step 2`` or an enumerator ``2.``. An occurrence counts when it
stands complete as the result of a clause:

- *announced* (strong): the whole content of a ``\\boxed{}``/``\\fbox{}`` (``\\boxed{x = 3}``
  states ``3``), or after "the answer is", "answer:", "####";
- *derived* (weak): the right-hand side closing an equation (``... = 8 pears.``, not
  ``= 8x``, not a bound ``\\ge ... = 9``), or after "is", "are", "equals", "equal to",
  "get", "a total of" closing a clause.

A weak statement before the first announcement is the first statement unless that
announcement computes the value itself (``-15+30 = \\boxed{15}``: the earlier ``x = 15`` was
another quantity). With no announcement in the text (a prefix, an unboxed trace), a weak
statement counts unless the text goes on to compute a different value (``5-2 = 3`` pencils
only, then ``4-2 = 2`` ...): it was an intermediate.

Labelled reference: ``tests/data/answer_locator`` (criteria in its README). Bump
``LOCATOR_VERSION`` whenever an offset can change: the prefix and transfer-prefix rules
carry it as a parameter, so the workflow re-cuts exactly what it affects.
"""

from __future__ import annotations

import re
from fractions import Fraction

# 1: prefixes.first_statement, the first occurrence as a whole number anywhere.
LOCATOR_VERSION = "2"

_SPACES = (" ", "\t", "\n", "~")
# Wrappers between a verb or "=" and the value: math delimiters, alignment, spacing.
_WRAPPERS = ("$", "\\(", "\\[", "&", "\\quad", "\\qquad", "\\;", "\\,", "\\!", "\\displaystyle", "**")
_BOX_OPENERS = ("\\boxed{", "\\fbox{")
_VERB = re.compile(r"(?:^|[^A-Za-z])(is|are|was|were|be|equals|equal to|get|total of)$", re.IGNORECASE)
_ANNOUNCE = re.compile(r"(?:answer\s*(?:is|was|would be|will be|=|:)?|####)$", re.IGNORECASE)
_BOUND = re.compile(r"\\(?:le|ge|leq|geq|lt|gt|ne|neq)(?![A-Za-z])|[<>≤≥≠]")
# After a value, these end its clause: units, punctuation, math and line ends.
_CLOSING_COMMANDS = ("\\]", "\\)", "\\\\", "\\end", "\\quad", "\\qquad", "\\text", "\\mbox",
                     "\\mathrm", "\\textrm", "\\hbox", "\\%", "\\,", "\\;", "\\ ", "\\!", "\\$",
                     "\\hspace", "\\phantom")
_UNIT = re.compile(r"\s*(?:\^\s*\{?\\circ\}?|°|\\%|%|\\(?:text|mbox|mathrm|textrm)\s*\{[^{}]*\}(?:\^\d)?)")
# Where the formula or clause of an "=" starts: a bound before it belongs to another clause.
_CLAUSE_MARKS = ("$", "\\[", "\\begin", "\n", ". ", ", ", "; ", " so ", " and ", " then ")
_COMPUTATION = re.compile(r"[0-9+\-*/=]|\\(?:cdot|times|div|frac|dfrac|tfrac|sqrt|pm)(?![A-Za-z])")


def locate_answer(text: str, answer: str | None, start: int = 0) -> int | None:
    """Offset in ``text`` (from ``start``) of the first statement of ``answer`` as a result."""
    pattern = answer_pattern(answer)
    if pattern is None:
        return None
    weak: list[int] = []
    for match in pattern.finditer(text, start):
        s, e = match.start(), match.end()
        if _glued(text, s, e):
            continue
        kind = statement_kind(text, s, e)
        if kind == "strong":
            if weak and not _announcement_computes(text, s):
                return weak[0]
            return s
        if kind == "weak":
            weak.append(s)
    # Without an announcement, a value the text computes past is an intermediate.
    last_other = _last_other_result(text, pattern) if weak else -1
    return next((s for s in weak if s > last_other), None)


def states_answer(text: str, answer: str | None) -> bool:
    """Whether ``text`` states ``answer`` as a result anywhere (the transfer leak flag)."""
    return locate_answer(text, answer) is not None


def answer_pattern(answer: str | None) -> re.Pattern[str] | None:
    """A regex for the written forms of ``answer``: the same expression up to spacing,
    ``\\dfrac``/``\\frac``, ``\\left``/``\\right``, thousands separators, a ``\\text{}`` wrapper,
    a trailing unit or degree sign; a fraction also as ``a/b`` and as its terminating decimal."""
    if answer is None or (isinstance(answer, float) and answer != answer):
        return None
    written = str(answer).strip().strip("$").strip().rstrip(".").strip()
    core = re.sub(r"^\\(?:boxed|text|textbf|mathrm)\{(.*)\}$", r"\1", written) if _one_group(written) else written
    core = core.strip()
    if not core:
        return None
    forms = [written, core]
    bare = re.sub(r"\s*(?:\^\s*\{?\\circ\}?|\\(?:text|mbox|mathrm)\s*\{[^{}]*\}(?:\^\d)?|\\%|%)$", "", core).strip()
    if bare and bare != core:
        forms.append(bare)
    forms += _other_forms(bare or core)
    alternatives = sorted({_form_regex(f) for f in forms}, key=len, reverse=True)
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


def _one_group(core: str) -> bool:
    """``\\text{A}`` as a whole (not ``\\text{A} + \\text{B}``)."""
    match = re.match(r"^\\(?:boxed|text|textbf|mathrm)\{", core)
    if not match or not core.endswith("}"):
        return False
    depth = 0
    for i, ch in enumerate(core[match.end() - 1 :], match.end() - 1):
        depth += ch == "{"
        depth -= ch == "}"
        if depth == 0:
            return i == len(core) - 1
    return False


def _other_forms(core: str) -> list[str]:
    """The same value written as ``a/b`` or a terminating decimal, for a fraction answer."""
    match = re.fullmatch(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}|(-?)(\d+)/(\d+)", core)
    if not match:
        return []
    sign, num, den = (match.group(1), match.group(2), match.group(3)) if match.group(2) else match.group(4, 5, 6)
    forms = [f"{sign}{num}/{den}", f"{sign}\\frac{{{num}}}{{{den}}}"]
    value = Fraction(int(num), int(den))
    reduced = value.denominator
    while reduced % 2 == 0:
        reduced //= 2
    while reduced % 5 == 0:
        reduced //= 5
    if reduced == 1 and int(den) != 0:
        decimal = f"{float(value):.10f}".rstrip("0").rstrip(".")
        forms += [sign + decimal, sign + decimal.lstrip("0") if decimal.startswith("0.") else sign + decimal]
    return forms


def _form_regex(form: str) -> str:
    """A regex for one written form, tolerant of spacing and LaTeX spelling variants."""
    out = []
    for token in re.findall(r"\\[A-Za-z]+|\\.|\d+|\s+|.", form):
        if token.isspace() or token in ("\\,", "\\;", "\\!", "\\ "):
            continue
        if token in ("\\left", "\\right"):
            continue  # optional anyway: see the separator below
        if token in ("\\frac", "\\dfrac", "\\tfrac"):
            out.append(r"\\[dt]?frac")
        elif token.isdigit() and len(token) > 3:
            out.append(_grouped_digits(token))
        else:
            out.append(re.escape(token))
    # Between tokens: spacing, spacing commands, and \left / \right before brackets.
    sep = r"(?:\s|\\[,;! ]|\\left|\\right)*"
    bracket = re.sub(r"^\\left\s*", "", form)
    opening = r"(?:\\left\s*)?" if bracket[:1] in "([{" or bracket.startswith("\\{") else ""
    return opening + sep.join(out)


def _grouped_digits(digits: str) -> str:
    """``10080`` also as ``10,080`` or ``10{,}080``."""
    head = len(digits) % 3 or 3
    groups = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return r"(?:,|\{,\})?".join(groups)


def _glued(text: str, s: int, e: int) -> bool:
    """The match is part of a longer token: ``8`` in ``18``, ``0.8``, ``8.5``, ``8x``."""
    before = text[s - 1] if s > 0 else " "
    after = text[e] if e < len(text) else " "
    if before.isalnum() or before in "._^" or (before == "\\" and text[s : s + 1].isalpha()):
        return True
    if after.isalnum() and text[e - 1].isalnum():
        return True
    return after == "." and e + 1 < len(text) and text[e + 1].isdigit()


def _skip_back(text: str, i: int) -> int:
    """Index just after the last character before ``i`` that is not space or a wrapper."""
    while i > 0:
        if text[i - 1] in _SPACES:
            i -= 1
            continue
        for wrapper in _WRAPPERS:
            if text.endswith(wrapper, 0, i):
                i -= len(wrapper)
                break
        else:
            return i
    return i


def statement_kind(text: str, s: int, e: int) -> str | None:
    """``strong`` (boxed or announced), ``weak`` (closing an equation or a copula clause) or
    ``None`` (not a statement) for the occurrence ``text[s:e]``."""
    box = _open_box(text, s)
    if box >= 0:
        lhs = text[box:s]
        if (not lhs.strip() or _ends_with_equals(lhs)) and _box_closes(text, e):
            return "strong"
        return None
    i = _skip_back(text, s)
    head = text[max(0, i - 40) : i]
    if _ANNOUNCE.search(head) and _closes_clause(text, e):
        return "strong"
    if not _closes_clause(text, e):
        return None
    if _ends_with_equals(head):
        return None if _is_bound(text, i - 1) else "weak"
    verb = _VERB.search(head)
    return "weak" if verb else None


def _ends_with_equals(head: str) -> bool:
    stripped = head.rstrip()
    return stripped.endswith("=") and not stripped.endswith(("==", "<=", ">=", "!=", ":="))


def _open_box(text: str, s: int) -> int:
    """Start of the content of the ``\\boxed{`` that is still open at ``s``, or -1."""
    window = max(0, s - 300)
    best = -1
    for opener in _BOX_OPENERS:
        pos = text.rfind(opener, window, s)
        if pos >= 0:
            content = pos + len(opener)
            depth = 0
            for ch in text[content:s]:
                depth += ch == "{"
                depth -= ch == "}"
                if depth < 0:
                    break
            else:
                if depth == 0:
                    best = max(best, content)
    return best


def _box_closes(text: str, e: int) -> bool:
    """After the value only a unit, then the box's closing brace."""
    j = e
    while True:
        unit = _UNIT.match(text, j)
        if not unit or unit.end() == j:
            break
        j = unit.end()
    rest = re.sub(r"^[A-Za-z ]*", "", text[j : j + 40].lstrip())  # a noun: \boxed{3 pears}
    return rest.startswith("}")


def _closes_clause(text: str, e: int) -> bool:
    """The value ends its clause: punctuation, a line or math end, a unit or a word."""
    unit = _UNIT.match(text, e)
    j = unit.end() if unit else e
    while j < len(text) and text[j] in " \t~":
        j += 1
    if j >= len(text):
        return True
    ch, nxt = text[j], text[j + 1 : j + 2]
    if ch == ",":
        # "x = 9, -4": a list of values, not the result.
        return not re.match(r",\s*(?:\$?\s*-?\s*\d|\\pm|-)", text[j : j + 8])
    if ch in ".;:!?":
        return not nxt.isdigit()
    if ch in "$\n)}&":
        return True
    if ch == "\\":
        return text.startswith(_CLOSING_COMMANDS, j)
    return ch.isalpha()


def _is_bound(text: str, eq: int) -> bool:
    """The ``=`` at ``eq`` continues an inequality (``\\ge 2\\sqrt{..} = 2``) of the same
    formula or clause: a bound."""
    seg = max(text.rfind(mark, 0, eq) for mark in _CLAUSE_MARKS)
    return _BOUND.search(text, seg + 1, eq) is not None


def _announcement_computes(text: str, s: int) -> bool:
    """The announcement at ``s`` is the result of a computation written just before it
    (``-15+30 = \\boxed{15}``), so the value was derived there, not earlier."""
    box = _open_box(text, s)
    if box < 0:
        return False
    opener = text.rfind("\\", 0, box)
    i = _skip_back(text, opener)
    if not _ends_with_equals(text[max(0, i - 2) : i]):
        return False
    seg = max(text.rfind("$", 0, i - 1), text.rfind("\\[", 0, i - 1), text.rfind("\\begin", 0, i - 1),
              text.rfind("\n", 0, i - 1))
    lhs = text[seg + 1 : text.rfind("=", 0, i)]
    lhs = re.sub(r"^\{[A-Za-z*]+\}", "", lhs)  # the environment name of \begin{align*}
    return _COMPUTATION.search(lhs.replace("&", "")) is not None


def _last_other_result(text: str, pattern: re.Pattern[str]) -> int:
    """Position of the last ``=`` whose right-hand side is not the answer (-1 if none)."""
    for eq in reversed(list(re.finditer(r"(?<![<>!=:])=(?!=)", text))):
        j = _skip_forward(text, eq.end())
        match = pattern.match(text, j)
        if not (match and not _glued(text, match.start(), match.end()) and _closes_clause(text, match.end())):
            return eq.start()
    return -1


def _skip_forward(text: str, i: int) -> int:
    """Index of the first character at or after ``i`` that is not space or a wrapper."""
    while i < len(text):
        if text[i] in _SPACES:
            i += 1
            continue
        for wrapper in _WRAPPERS:
            if text.startswith(wrapper, i):
                i += len(wrapper)
                break
        else:
            return i
    return i
