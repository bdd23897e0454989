import numpy as np
import pandas as pd
import pytest

from cot_potential.optimize import OptimizeSettings, chunk_of, compare


def test_a_sentence_chunk_ends_after_the_first_sentence_or_line():
    pieces = ["We", " add", " 3", ".", " Then", " 4", "."]
    ids = tuple(range(len(pieces)))
    assert chunk_of(ids, pieces, "sentence") == 4
    assert chunk_of(ids, pieces, "tokens") == 7
    assert chunk_of(ids[:3], pieces[:3], "sentence") == 3  # no boundary: the whole candidate
    assert chunk_of((1, 2), ["a\n", "b"], "sentence") == 1


def test_settings_ignore_the_run_keys():
    assert OptimizeSettings.from_config({"enabled": True, "runs": [], "candidates": 3}).candidates == 3


def test_comparison_at_equal_generated_tokens():
    ids = ["a", "b"]
    optimized = pd.DataFrame({"problem_id": ids, "correct": [True, False], "tokens_spent": [400, 800],
                              "n_steps": [3, 5]})
    steps = pd.DataFrame({"problem_id": ["a", "a", "b"], "chosen": [True, False, True],
                          "estimate": [0.75, 0.25, 0.5], "fresh_estimate": [0.5, np.nan, 0.25]})
    optimized_dynamics = pd.DataFrame({"problem_id": ids, "monotone": [True, True]})
    potentials = pd.DataFrame({"problem_id": ids, "cut_index": [0, 0], "n_samples": [16, 16],
                               "n_correct": [4, 0], "mean_completion_tokens": [40.0, 50.0]})
    traces = pd.DataFrame({"problem_id": ids, "correct": [True, False], "n_tokens": [40, 60]})
    dynamics = pd.DataFrame({"problem_id": ids, "monotone": [False, True]})
    table = compare(optimized, steps, optimized_dynamics, potentials, traces, dynamics, model="m", dataset="d").set_index("method")
    assert list(table.index) == ["ordinary", "optimized", "best_of_n"]
    assert table.loc["ordinary", "accuracy"] == 0.5 and table.loc["ordinary", "monotone_rate"] == 0.5
    assert table.loc["optimized", "monotone_rate"] == 1.0 and table.loc["optimized", "tokens_per_problem"] == 600
    assert table.loc["optimized", "monotone_rate_ci_low"] < 1.0  # all of 2 monotone: no point interval
    assert table.loc["optimized", "winners_curse_gap"] == pytest.approx(0.625 - 0.375)
    # best-of-n: a gets n = 400 / 40 = 10 of its 16 samples (4 correct), b gets 16 (capped; none correct)
    from cot_potential.rates import pass_at_k

    assert table.loc["best_of_n", "best_of_n"] == 13
    assert table.loc["best_of_n", "accuracy"] == pytest.approx((pass_at_k(16, 4, 10) + 0) / 2)
    assert table.loc["best_of_n", "tokens_per_problem"] == pytest.approx((10 * 40 + 16 * 50) / 2)


class ScriptedEngine:
    """A stand-in for the vLLM engine with a known answer: continuations that write "Good"
    lead to the correct answer, "Bad" ones away from it. Candidate requests are those with
    n == 2 (M); every other request is a rollout."""

    def __init__(self, tokenizer):
        self.tok = tokenizer
        self.calls = []

    def _completion(self, text, finished):
        from cot_potential.engine import Completion

        ids = self.tok.encode(text, add_special_tokens=False) + ([self.tok.eos_token_id] if finished else [])
        return Completion(tuple(ids), text, "stop")

    def generate(self, requests, sampling, progress=True):
        out = []
        for r in requests:
            prefix = self.tok.decode(list(r.prompt_token_ids), skip_special_tokens=True).split("assistant")[-1]
            self.calls.append(r.n)
            if r.n == 2:
                if prefix.count("step.") >= 2:
                    out.append([self._completion(" \\boxed{7}", True), self._completion(" \\boxed{8}", True)])
                else:
                    out.append([self._completion(" Bad step. More", False), self._completion(" Good step. More", False)])
            else:
                good = prefix.count("Bad") == 0 and "Good" in prefix
                answer = "8" if good else "7"
                out.append([self._completion(f" So \\boxed{{{answer}}}.", True) for _ in range(r.n)])
        return out


def test_the_optimizer_keeps_the_best_candidate_and_re_estimates_on_fresh_rollouts(smollm2_tokenizer):
    from cot_potential.grading import GradingSettings
    from cot_potential.optimize import build_traces, fresh_curves, fresh_estimates
    from cot_potential.traces import grade_traces

    tok = smollm2_tokenizer
    card = {"name": "scripted", "prompt": {"version": 1, "user": "{problem}"}, "chat_template_kwargs": {},
            "sampling": {}, "max_tokens": 64, "stop_token_ids": [tok.eos_token_id],
            "stop_strings": [tok.eos_token], "thinking": False}
    problems = pd.DataFrame({"problem_id": ["p"], "problem": ["What is 3 + 5?"], "answer": ["8"]})
    engine = ScriptedEngine(tok)
    grading = GradingSettings(workers=1)
    settings = OptimizeSettings(chunk="sentence", chunk_tokens=8, candidates=2, n_estimate=3, max_steps=5)
    traces, steps = build_traces(engine, tok, card, problems, settings, "math", grading)
    trace = traces.iloc[0]
    assert trace["text"] == " Good step. Good step. \\boxed{8}" and trace["finish_reason"] == "stop"
    assert trace["n_steps"] == 3 and list(steps.groupby("step")["chosen"].sum()) == [1, 1, 1]
    chosen = steps[steps["chosen"]]
    assert list(chosen["candidate"]) == [1, 1, 1] and list(chosen["estimate"]) == [1.0, 1.0, 1.0]
    assert list(steps.loc[~steps["chosen"], "estimate"]) == [0.0, 0.0, 0.0]
    assert list(steps["finished"]) == [False, False, False, False, True, True]
    # every generated token counts: candidates (whole, before the sentence cut) and rollouts
    assert trace["tokens_spent"] > 2 * 2 * 3 * len(tok.encode(" So \\boxed{8}.", add_special_tokens=False))
    traces = grade_traces(traces, problems, card, "math", grading)
    assert bool(traces["correct"].iloc[0])
    fresh = fresh_estimates(engine, tok, card, traces, steps, 3, "math", grading, problems)
    assert list(fresh.loc[fresh["chosen"], "fresh_estimate"]) == [1.0, 1.0, 1.0]
    curve = fresh_curves(engine, tok, card, traces, problems, {"fractions": [0.0, 0.5, 1.0], "answer_cuts": [0]},
                         4, "math", grading)
    assert (curve["n_samples"] == 4).all() and curve["answer_cut"].sum() == 1
    assert curve.sort_values("cut_index")["potential"].iloc[0] == 0.0  # nothing written yet: "So 7"
