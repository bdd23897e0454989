"""Adaptive designs on planted true curves: refinement finds changes, estimates stay unbiased."""

import numpy as np
import pandas as pd
import pytest

from cot_potential.adaptive import AdaptiveSettings, adaptive_potentials, run_designs
from cot_potential.refine import BRACKET, COARSE, ESTIMATE, SEARCH, RefineSettings, TraceDesign, significant
from cot_potential.sequential import StoppingRule, confidence_sequence

COARSE_TOKENS = [0, 50, 100, 150, 200]


def oracle(truths, rng):
    """Bernoulli draws from each trace's true potential at a token."""

    def sample(work):
        return [list(rng.random(need.count) < truths[key](need.token)) for key, need in work]

    return sample


def step(at, before, after):
    return lambda t: before if t < at else after


def designs_for(truths, rule=StoppingRule(), refine=RefineSettings(min_gap=1)):
    return {key: TraceDesign(COARSE_TOKENS, rule, refine) for key in truths}


def test_a_step_is_bracketed_to_the_token_and_only_reported_cuts_are_estimated():
    truths = {0: step(137, 0.2, 0.9)}
    designs = designs_for(truths)
    rounds = run_designs(designs, oracle(truths, np.random.default_rng(0)))
    design = designs[0]
    assert design.done and rounds > 5
    brackets = [c.token for c in design.reported() if c.role == BRACKET]
    assert brackets == [136, 137]
    assert {c.token for c in design.reported() if c.role == COARSE} == set(COARSE_TOKENS)
    for cut in design.cuts.values():
        assert len(cut.search) == 32
        assert (len(cut.estimate) > 0) == cut.reported
        if cut.reported:
            assert design.rule.min_n <= len(cut.estimate) <= design.rule.max_n


def test_without_refinement_only_the_coarse_grid_is_sampled_and_cut_budget_is_kept():
    truths = {0: step(137, 0.0, 1.0)}
    plain = {0: TraceDesign(COARSE_TOKENS, StoppingRule(), None)}
    run_designs(plain, oracle(truths, np.random.default_rng(1)))
    assert sorted(plain[0].cuts) == COARSE_TOKENS and all(not c.search for c in plain[0].cuts.values())
    tight = designs_for(truths, refine=RefineSettings(max_cuts=7))
    run_designs(tight, oracle(truths, np.random.default_rng(1)))
    assert len(tight[0].cuts) == 7


@pytest.mark.parametrize("p", [0.0, 0.05, 0.2, 0.5, 0.8, 0.95, 1.0])
def test_flat_curves_unbiased_covered_and_rarely_refined(p):
    """At every p of a grid: reported estimates are unbiased and the confidence sequences
    cover the truth; a flat curve is rarely refined (only through the test's false positives)."""
    rng = np.random.default_rng(int(p * 1000))
    truths = {i: (lambda t, p=p: p) for i in range(100)}
    designs = designs_for(truths)
    run_designs(designs, oracle(truths, rng))
    estimates, ks, ns, extra = [], [], [], 0
    for design in designs.values():
        extra += len(design.cuts) - len(COARSE_TOKENS)
        for cut in design.reported():
            ks.append(sum(cut.estimate))
            ns.append(len(cut.estimate))
            estimates.append(design.estimate(cut))
    low, high = confidence_sequence(ks, ns)
    covered = (low <= p) & (p <= high)
    estimates = np.array(estimates)
    se = max(estimates.std() / np.sqrt(len(estimates)), 1e-3)
    assert abs(estimates.mean() - p) < 4 * se
    assert np.mean(covered) >= 0.95
    assert extra / len(designs) < 1.0


def test_reported_jumps_are_not_inflated_by_the_search_that_found_them():
    """The winner's curse: among intervals chosen because their search samples differ, the
    search difference overstates the true jump; the fresh estimates do not."""
    rng = np.random.default_rng(7)
    truths = {i: step(int(rng.integers(10, 190)), 0.4, 0.65) for i in range(120)}
    designs = designs_for(truths, refine=RefineSettings(search_n=16, min_gap=1))
    run_designs(designs, oracle(truths, rng))
    search_gap, fresh_gap = [], []
    for key, design in designs.items():
        cuts = design.reported()
        for a, b in zip(cuts, cuts[1:]):
            if significant(a.search, b.search, design.refine.alpha)[0]:
                true_jump = truths[key](b.token) - truths[key](a.token)
                search_gap.append(abs(np.mean(b.search) - np.mean(a.search)) - abs(true_jump))
                sign = np.sign(np.mean(b.search) - np.mean(a.search))
                fresh_gap.append(sign * (design.estimate(b) - design.estimate(a)) - abs(true_jump))
    assert len(search_gap) >= 15
    assert np.mean(search_gap) > 0.15
    assert abs(np.mean(fresh_gap)) < 4 * np.std(fresh_gap) / np.sqrt(len(fresh_gap)) + 0.01


def test_adaptive_potentials_report_estimate_rows_with_the_sequential_estimate():
    rule = AdaptiveSettings(max_n=64).rule
    prefixes = pd.DataFrame({
        "prefix_id": ["p/0/t0", "p/0/t0/search", "p/0/t5/search", "p/0/t9"],
        "problem_id": "p", "trace_id": 0, "cut_index": [0, 0, 1, 2], "cut_token": [0, 0, 5, 9],
        "cut_fraction": [0, 0, 0.5, 1], "phase": [ESTIMATE, SEARCH, SEARCH, ESTIMATE],
        "role": [COARSE, COARSE, "search", COARSE], "n": [32, 4, 4, 16],
    })
    verdicts = {"p/0/t0": ["correct"] * 5 + ["incorrect"] * 27, "p/0/t0/search": ["correct"] * 4,
                "p/0/t5/search": ["incorrect"] * 4, "p/0/t9": ["correct"] * 16}
    grades = pd.DataFrame([{"prefix_id": pid, "sample": i, "answer": "1", "answer_key": "1", "verdict": v,
                            "finish_reason": "stop", "n_tokens": 3}
                           for pid, vs in verdicts.items() for i, v in enumerate(vs)])
    table = adaptive_potentials(prefixes, grades, AdaptiveSettings(max_n=64))
    assert table["prefix_id"].tolist() == ["p/0/t0", "p/0/t9"]
    assert table["cut_index"].tolist() == [0, 1]
    assert table["potential"].iloc[0] == pytest.approx(rule.estimate(5, 32))
    assert table["potential_mle"].iloc[0] == pytest.approx(5 / 32)
    low, high = confidence_sequence(16, 16)
    assert table["ci_low"].iloc[1] == pytest.approx(low[0]) and table["ci_high"].iloc[1] == 1.0
