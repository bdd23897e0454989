"""The answer locator: where a text first states its final answer as a result."""

import json
import re
from pathlib import Path

import pytest

from cot_potential.answer_locator import LOCATOR_VERSION, locate_answer, states_answer

FIXTURE = Path(__file__).parent / "data" / "answer_locator"
REPO = Path(__file__).resolve().parents[1]


def fixture_rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURE / f"{name}.jsonl").read_text().splitlines()]


def test_the_fixture_is_what_its_readme_promises():
    math500, traces, no_answer = (fixture_rows(n) for n in ("math500", "traces", "no_answer"))
    assert len(math500) >= 80 and len(traces) >= 40 and len(no_answer) >= 20
    assert sum(bool(re.fullmatch(r"-?[0-9]", r["answer"].strip())) for r in math500) >= len(math500) / 2
    assert all(r["offset"] is None for r in no_answer)
    for row in math500 + traces:
        if row["offset"] is not None:  # the labeller's check: the label points at what was read
            assert row["text"][row["offset"]:].startswith(row["stated"]), row["id"]


def test_exact_offset_precision_and_recall_on_the_labelled_fixture(record_property):
    rows = fixture_rows("math500") + fixture_rows("traces") + fixture_rows("no_answer")
    found = [(locate_answer(r["text"], r["answer"]), r["offset"]) for r in rows]
    hits = sum(got is not None and got == want for got, want in found)
    precision = hits / sum(got is not None for got, _ in found)
    recall = hits / sum(want is not None for _, want in found)
    record_property("precision", precision)
    record_property("recall", recall)
    print(f"answer locator on {len(rows)} labelled texts: precision {precision:.3f}, recall {recall:.3f}")
    assert precision >= 0.95 and recall >= 0.95, f"precision {precision:.3f}, recall {recall:.3f}"


@pytest.mark.parametrize("text, answer", [
    ("we factor it as (x-3)(x+1)", "3"),  # a factor
    ("so x^2 + 1 is positive", "2"),  # an exponent
    ("with a_2 = 5 and \\log_2 8", "2"),  # an index, a subscript
    ("Step 2: add the numbers.", "2"),  # a step label
    ("2. Add the numbers.\n3. Check.", "2"),  # an enumerator
    ("18 apples, 0.8 kg and 8.5 m", "8"),  # inside other numbers
    ("so 3x = 7", "3"),  # a coefficient
    ("the point (0,3) lies on it", "3"),  # a coordinate
    ("so x = -2.", "2"),  # another value
    ("by AM-GM, a + b \\ge 2\\sqrt{ab} = 2.", "2"),  # a bound, not the minimum
    ("so x = 9, -4 are the roots", "9"),  # a list of candidates
    ("Lily has 8 pears.", "8"),  # a restated given
])
def test_an_occurrence_is_not_a_statement(text, answer):
    assert locate_answer(text, answer) is None


@pytest.mark.parametrize("text, answer, before", [
    # (the text, the answer, what comes just before the statement's first character)
    ("so 3 + 5 = 8 pears. The answer is \\boxed{8}.", "8", "5 = "),
    ("Since 2^3 = 8, we have x = \\boxed{3}.", "3", "x = \\boxed{"),
    ("The answer is 7.", "7", "is "),
    ("#### 12", "12", "#### "),
    ("so the count is $\\boxed{x = 4}$", "4", "x = "),
    ("there are 6 ways to do it", "6", "are "),
    ("the area is $\\boxed{15\\mbox{ cm}^2}$", "15\\mbox{ cm}^2", "boxed{"),
    ("the area is $15$ square cm", "15\\mbox{ cm}^2", "is $"),
    ("so $r = \\dfrac{1}{2}$ and", "\\frac{1}{2}", "r = "),
    ("so the probability is 1/2.", "\\frac{1}{2}", "is "),
    ("so d = 0.5 inches", "\\frac{1}{2}", "d = "),
    ("for a total of 10,080 seatings.", "10080", "of "),
    ("the point is $\\left( 3, \\frac{\\pi}{2} \\right)$.", "(3,\\frac{\\pi}{2})", "is $"),
    ("so the angle is 120^\\circ.", "120^\\circ", "is "),
    ("Therefore $\\boxed{\\text{Evelyn}}$ is our answer.", "\\text{Evelyn}", "boxed{"),
])
def test_a_statement_is_found_at_its_first_character(text, answer, before):
    assert locate_answer(text, answer) == text.index(before) + len(before)


def test_the_first_statement_wins_unless_the_announcement_computes_the_value():
    # "x = 3" is the asked x: the box repeats it.
    text = "so x = 3. Check: 3 + 4 = 7. The answer is \\boxed{3}."
    assert locate_answer(text, "3") == text.index("= 3") + 2
    # "x = 15" is where the minimum is taken; the minimum is computed at the box.
    text = "minimized when $x=15,$ giving $-15+30=\\boxed{15}.$"
    assert locate_answer(text, "15") == text.index("{15}") + 1
    # from `start` on only
    text = "so 3 + 5 = 8 pears. The answer is \\boxed{8}."
    assert locate_answer(text, "8", start=text.index("pears")) == text.index("{8}") + 1


def test_an_unfinished_text_that_computes_on_has_not_stated_the_answer():
    assert locate_answer("so 5 - 2 = 3 have pencils only, and 4 - 2 = 2 have pens only.", "3") is None
    assert locate_answer("so 5 - 2 = 3 have pencils only, and 4 - 2 = 2 have", "2") is not None
    assert states_answer("so 3 + 4 = 7 apples", "7")


def test_no_answer_no_statement():
    assert locate_answer("anything = 3", None) is None
    assert locate_answer("anything = 3", "") is None
    assert locate_answer("anything = 3", float("nan")) is None


@pytest.mark.parametrize("rules, rule", [("prefixes.smk", "cut_prefixes"), ("transfer.smk", "transfer_prefixes"),
                                         ("optimize.smk", "optimize_cot")])
def test_rules_that_locate_answers_rerun_when_the_locator_changes(rules, rule):
    """Snakemake reruns a job whose params changed: the locator's version is one of them."""
    text = (REPO / "workflow" / "rules" / rules).read_text()
    block = text.split(f"rule {rule}:")[1].split("\nrule ")[0]
    assert "locator_version=LOCATOR_VERSION" in block
    assert LOCATOR_VERSION != "1"  # 1 was the bare whole-number search
