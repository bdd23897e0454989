"""The hostile corpus: completions built to break graders, reports and loaders.

``cases.jsonl`` holds the hand-written cases (one per line: ``id``, ``kind``, ``gold``, the
``text`` or its raw ``bytes_b64`` with the ``decode`` error mode a careless reader would use,
optional ``expect``: the verdicts allowed). This module adds what is too big for git (1 MB
strings, 100 000 boxes, deep nesting) and wraps every markup/template/Python payload three
more ways (inside a box, before and after a correct box), so each payload is seen both as an
answer and as surrounding text.

    python tests/hostile/corpus.py      # prints the number of cases per kind
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MB = 1_000_000
NOT_CORRECT = ("incorrect", "timeout")
ANY = ("correct", "incorrect", "no_answer", "timeout")
BOX_COMMANDS = ("\\boxed", "\\fbox")


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    text: str
    gold: str
    expect: tuple[str, ...] = ANY
    payload: bool = False  # markup, template or Python that must never run


def _static() -> list[Case]:
    cases = []
    for line in (HERE / "cases.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if "bytes_b64" in record:
            text = base64.b64decode(record["bytes_b64"]).decode("utf-8", errors=record["decode"])
            record["id"] += f"-{record['decode']}"
        else:
            text = record["text"]
        expect = tuple(record.get("expect", ()))
        if not expect:
            expect = ("no_answer",) if record.get("payload") else ANY
        cases.append(Case(record["id"], record["kind"], text, record["gold"], expect, record.get("payload", False)))
    return cases


def _wrapped(payloads: list[Case]) -> list[Case]:
    """Each payload inside a box (an answer that is never right), and before/after a correct
    box (the right answer must survive the noise around it)."""
    out = []
    for case in payloads:
        has_box = any(cmd in case.text for cmd in BOX_COMMANDS)
        around = ("correct",) if not has_box else ANY
        out += [
            Case(f"{case.id}-boxed", case.kind, "\\boxed{" + case.text + "}", case.gold, NOT_CORRECT + ("no_answer",), True),
            Case(f"{case.id}-before", case.kind, case.text + " so the answer is \\boxed{3}.", "3", around, True),
            Case(f"{case.id}-after", case.kind, "The answer is \\boxed{3}. " + case.text, "3", around, True),
        ]
    return out


def _huge() -> list[Case]:
    rng = random.Random(6)
    noise = "".join(chr(rng.choice([rng.randrange(32, 0xD800), rng.randrange(0xE000, 0x110000)])) for _ in range(MB // 4))
    cases = [
        ("1mb-letters", "a" * MB, ("no_answer",)),
        ("1mb-digits-in-a-box", "\\boxed{" + "1" * MB + "}", NOT_CORRECT),
        ("1mb-of-openers", "\\boxed{" * (MB // 7), ("no_answer",)),
        ("1mb-of-closers", "}" * MB, ("no_answer",)),
        ("1mb-of-braces-then-answer", "{" * MB + "\\boxed{3}", ("correct",)),
        ("1mb-of-spaces-then-answer", " " * MB + "\\boxed{3}", ("correct",)),
        ("1mb-of-backslashes", "\\" * MB + " \\boxed{3}", ANY),
        ("1mb-unicode-noise", noise, ANY),
        ("1mb-of-fracs", "\\frac{1}{" * (MB // 9), ("no_answer",)),
        ("1mb-after-the-answer", "\\boxed{3}" + "x}{" * (MB // 3), ("correct",)),
        ("1mb-of-nul", "\x00" * MB, ("no_answer",)),
        ("1mb-of-scripts", "<script>document.title='PWNED'</script>" * (MB // 40), ("no_answer",)),
        ("1mb-of-powers", "9^{" * (MB // 3), ("no_answer",)),
        ("deep-braces-in-a-box", "\\boxed{" + "{" * 100_000 + "3" + "}" * 100_000 + "}", NOT_CORRECT),
        ("100k-boxes", "".join(f"\\boxed{{{i}}} " for i in range(100_000)) + "\\boxed{3}", ("correct",)),
        ("5k-equal-boxes", "\\boxed{1} " * 5000 + "\\boxed{3}", ("correct",)),
        ("5k-empty-boxes", "\\boxed{} " * 5000, ("no_answer",)),
        ("1k-nested-boxes", "\\boxed{" * 1000 + "3" + "}" * 1000, ANY),
        ("5k-unclosed-boxes", "\\boxed{3 " * 5000, ("no_answer",)),
        ("100k-digit-number", "\\boxed{1" + "0" * 100_000 + "}", NOT_CORRECT),
    ]
    return [Case(f"huge-{name}", "huge", text, "3", expect) for name, text, expect in cases]


def load_corpus() -> list[Case]:
    static = _static()
    return static + _wrapped([c for c in static if c.payload]) + _huge()


if __name__ == "__main__":
    from collections import Counter

    corpus = load_corpus()
    print(len(corpus), dict(Counter(c.kind for c in corpus)))
