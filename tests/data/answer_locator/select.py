"""Which MATH-500 solutions the answer-locator fixture holds, and the unlabelled rows.

    python tests/data/answer_locator/select.py ../shared/data/math500.jsonl > candidates.jsonl

A seeded sample: 45 solutions whose answer is one digit (``-?[0-9]``: the answers a
substring search finds inside ``x^2`` or ``Step 2``) and 40 of the others. The offsets are
then labelled by reading (README.md); this script only picks and prints the texts.
"""

from __future__ import annotations

import json
import random
import re
import sys

SEED = 19
N_ONE_DIGIT = 45
N_OTHER = 40


def select(rows: list[dict]) -> list[dict]:
    one_digit = [r for r in rows if re.fullmatch(r"-?[0-9]", r["answer"].strip())]
    other = [r for r in rows if not re.fullmatch(r"-?[0-9]", r["answer"].strip())]
    rng = random.Random(SEED)
    chosen = rng.sample(one_digit, N_ONE_DIGIT) + rng.sample(other, N_OTHER)
    return [{"id": r["unique_id"], "source": "math500", "text": r["solution"], "answer": r["answer"],
             "offset": None, "stated": None} for r in chosen]


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        for row in select([json.loads(line) for line in f]):
            print(json.dumps(row))
