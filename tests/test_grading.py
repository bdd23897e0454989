import json

import pytest

from conftest import shared_file
from cot_potential.grading import GraderPool, GradingSettings, grade_texts


@pytest.fixture(scope="module")
def pool():
    with GraderPool(GradingSettings(timeout_s=5, workers=2)) as p:
        yield p


def gold_answers():
    for name in ("math500.jsonl", "aime2024.jsonl", "aime2025.jsonl"):
        for line in shared_file(name).read_text().splitlines():
            yield name, str(json.loads(line)["answer"])
    for line in shared_file("gsm8k_test.jsonl").read_text().splitlines():
        yield "gsm8k", json.loads(line)["answer"].split("####")[-1].strip()


def test_every_gold_answer_verifies_against_itself_through_extractor_and_grader(pool):
    golds = list(gold_answers())
    assert len(golds) == 500 + 30 + 30 + 1319
    texts = [f"Let me think.\nThe final answer is $\\boxed{{{g}}}$." for _, g in golds]
    graded = grade_texts(texts, [g for _, g in golds], ["stop"] * len(golds), pool,
                         stop_strings=("<|im_end|>",))
    failures = [(src, g, a) for (src, g), a, v in zip(golds, graded["answer"], graded["verdict"]) if v != "correct"]
    assert not failures, failures[:10]
    assert (graded["answer"] == [g.strip() for _, g in golds]).all()


def test_verdicts(pool):
    pairs = [("3", "3"), ("3", "4"), ("025", "25"), ("\\frac{1}{2}", "0.5"), ("1,234", "1234")]
    assert pool.verify(pairs) == ["correct", "incorrect", "correct", "correct", "correct"]


# Pairs that differ by a factor, at magnitudes where math-verify's absolute tolerance called
# them equal (each is checked in both orders).
DIFFERENT_MAGNITUDES = [
    ("2^{-81}", "2^{-80}"),
    ("0.0000002", "0.0000001"),
    ("2e-7", "1e-7"),
    ("2\\times10^{-7}", "1e-7"),
    ("10^{-30}", "2\\cdot 10^{-30}"),
    ("0", "10^{-20}"),
    ("0.0000001\\%", "0.0000002\\%"),
    ("(10^{-30}, 3)", "(2\\cdot 10^{-30}, 3)"),
    ("\\{10^{-30}, 3\\}", "\\{2\\cdot 10^{-30}, 3\\}"),
    ("\\begin{pmatrix} 10^{-9} \\\\ 1 \\end{pmatrix}", "\\begin{pmatrix} 2\\cdot10^{-9} \\\\ 1 \\end{pmatrix}"),
    ("x=10^{-30}", "x=2\\cdot 10^{-30}"),
    ("\\frac13", "0.3333"),
    ("123456.7", "123456.8"),
]
# The same value in another form (each checked in both orders).
SAME_VALUES = [
    ("\\frac{1}{2}", "0.5"),
    ("1/2", "0.5"),
    ("\\frac12", "\\dfrac{1}{2}"),
    ("10^{-7}", "1e-7"),
    ("0.0000001", "1e-7"),
    ("0.00000015", "1.5\\times 10^{-7}"),
    ("1.5\\times10^{-7}", "1.5E-7"),
    ("2^{-80}", "\\frac{1}{2^{80}}"),
    ("\\frac13", "0.333333"),
    ("\\frac17", "0.142857"),
    ("\\sqrt{2}", "1.414214"),
    ("9", "9\\%"),
    ("0.5", "50\\%"),
    ("0", "0.0"),
    ("\\begin{pmatrix} 10^{-9} \\\\ 1 \\end{pmatrix}", "\\begin{pmatrix} 0.000000001 \\\\ 1 \\end{pmatrix}"),
    ("3\\sqrt{2}", "\\sqrt{18}"),
    ("104", "104."),
    ("073", "\\textbf{(073)}"),
    ("113", "\\textbf{(113) }"),
    ("1,234", "1234"),
    ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}"),
]


def both_orders(pairs):
    return pairs + [(b, a) for a, b in pairs]


def test_numbers_that_differ_by_a_factor_are_incorrect_at_every_magnitude(pool):
    pairs = both_orders(DIFFERENT_MAGNITUDES)
    assert dict(zip(pairs, pool.verify(pairs))) == dict.fromkeys(pairs, "incorrect")


def test_equal_values_in_other_forms_stay_correct(pool):
    pairs = both_orders(SAME_VALUES)
    assert dict(zip(pairs, pool.verify(pairs))) == dict.fromkeys(pairs, "correct")


def test_the_relative_tolerance_is_the_configured_one():
    """The rule is the setting: 0.0000001 and 0.00000015 (which math-verify alone calls equal)
    differ by a third of the larger, which a tolerance of 0.4 accepts; 0 still accepts equal
    values in other forms."""
    pairs = [("0.0000001", "0.00000015"), ("\\frac{1}{2}", "0.5")]
    for tolerance, expected in ((0.4, ["correct", "correct"]), (0.0, ["incorrect", "correct"])):
        with GraderPool(GradingSettings(workers=1, relative_tolerance=tolerance)) as pool:
            assert pool.verify(pairs) == expected
    with pytest.raises(ValueError, match="relative_tolerance"):
        GraderPool(GradingSettings(relative_tolerance=1.0))


# Human solutions that do not grade correct against their own gold, and why.
UNGRADABLE_HUMAN_SOLUTIONS = {
    ("aime2024.jsonl", 60): "boxes nothing: it ends '$180 + 24 = 204$. -sepehr2010'",
}


def human_solutions():
    for name in ("math500.jsonl", "aime2024.jsonl"):
        for line in shared_file(name).read_text().splitlines():
            record = json.loads(line)
            yield (name, record.get("unique_id", record.get("id"))), record["solution"], str(record["answer"])


def test_every_human_solution_grades_correct_against_its_own_gold(pool):
    """MATH-500 and AIME 2024 solutions, whole, through the extractor and the grader: e.g.
    AIME's ``\\boxed{104.}`` and ``\\boxed{\\textbf{(073)}}`` grade correct."""
    solutions = list(human_solutions())
    assert len(solutions) == 530
    graded = grade_texts([s for _, s, _ in solutions], [g for _, _, g in solutions], ["stop"] * len(solutions),
                         pool)
    wrong = {key: (answer, verdict) for (key, _, _), answer, verdict
             in zip(solutions, graded["answer"], graded["verdict"]) if verdict != "correct"}
    assert set(wrong) == set(UNGRADABLE_HUMAN_SOLUTIONS), wrong
    assert wrong[("aime2024.jsonl", 60)] == (None, "no_answer")


def test_a_hanging_verification_is_killed_and_reported_as_timeout():
    with GraderPool(GradingSettings(timeout_s=1.5, workers=1)) as pool:
        verdicts = pool.verify([("3", "10^{10^{10^{10}}}"), ("7", "7")])
    assert verdicts == ["timeout", "correct"]


def test_no_answer_and_truncation_never_reach_the_verifier(pool):
    graded = grade_texts(["no box", "\\boxed{3}", "\\boxed{3}"], ["3", "3", "3"],
                         ["stop", "length", "stop"], pool)
    assert graded["verdict"].tolist() == ["no_answer", "no_answer", "correct"]
    assert graded["extraction"].tolist() == ["no_box", "truncated", "boxed"]


def test_identical_pairs_are_verified_once(pool, monkeypatch):
    seen = []
    original = pool._run

    def spy(pairs):
        seen.extend(pairs)
        return original(pairs)

    monkeypatch.setattr(pool, "_run", spy)
    assert pool.verify([("2", "2")] * 50 + [("2", "3")]) == ["correct"] * 50 + ["incorrect"]
    assert seen == [("2", "2"), ("2", "3")]


def test_killed_workers_are_replaced_by_started_spares():
    with GraderPool(GradingSettings(timeout_s=1, workers=2)) as pool:
        assert pool.verify([("3", "10^{10^{10^{10}}}"), ("3", "9^{9^{9^{9}}}")]) == ["timeout", "timeout"]
        spares = [w.proc.pid for w in pool._spares]
        assert len(spares) == 2
        assert pool.verify([("3", "10^{10^{10^{11}}}"), ("7", "7")]) == ["timeout", "correct"]
        assert spares[0] in [w.proc.pid for w in pool._workers]  # the spare took over at once
        assert len(pool._spares) == 2
        processes = [w.proc for w in pool._workers + pool._spares]
    assert all(proc.poll() is not None for proc in processes)  # closing the pool ends the spares too


def test_a_worker_that_cannot_start_is_an_error_not_an_endless_respawn():
    """With a 1 MB address space the worker dies importing math-verify, before it is ready."""
    with GraderPool(GradingSettings(timeout_s=5, workers=1, memory_mb=1)) as pool:
        with pytest.raises(RuntimeError, match="exited while starting"):
            pool.verify([("1", "1")])


def test_deduplicated_pool_verdicts_equal_naive_per_completion_verdicts(pool):
    """The optimized path (distinct pairs once, gold parsed once, worker processes) against
    our rules on math-verify called per completion in this process, on MATH-500 golds and
    variants."""
    import logging
    import random

    from cot_potential.answers import extract_answer
    from cot_potential.grading_worker import Judge

    rng = random.Random(0)
    golds = [g for src, g in gold_answers() if src == "math500.jsonl"][:100]
    completions = []
    for gold in golds:
        variants = [gold, f" {gold} ", gold.replace("\\frac", "\\dfrac"), "7", "\\frac{1}{2}", gold + "+1"]
        completions += [(gold, rng.choice(variants)) for _ in range(6)]
    texts = [f"So the answer is \\boxed{{{a}}}." for _, a in completions]
    optimized = grade_texts(texts, [g for g, _ in completions], ["stop"] * len(texts), pool)["verdict"].tolist()
    logging.disable(logging.WARNING)
    try:
        naive = []
        for text, (gold, _) in zip(texts, completions):
            answer = extract_answer(text, finish_reason="stop").answer
            naive.append(Judge(pool.settings.relative_tolerance)(gold, answer))  # a fresh judge: no gold cache
    finally:
        logging.disable(logging.NOTSET)
    assert optimized == naive
    assert 0.2 < naive.count("correct") / len(naive) < 0.8
