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
    math-verify called per completion in this process, on MATH-500 golds and variants."""
    import logging
    import random

    from math_verify import parse, verify

    from cot_potential.answers import extract_answer

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
            ok = verify(parse("\\boxed{" + gold + "}"), parse("\\boxed{" + answer + "}"))
            naive.append("correct" if ok else "incorrect")
    finally:
        logging.disable(logging.NOTSET)
    assert optimized == naive
    assert 0.2 < naive.count("correct") / len(naive) < 0.8
