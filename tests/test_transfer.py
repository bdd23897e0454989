import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from cot_potential.transfer import (
    SourceText, build_prefixes, cut_source, derangement, flag_answer_leaks, place,
    shuffle_sentences, snap_to_whitespace, states_gold, strip_thinking_tags, word_ends,
)
from cot_potential.unlocks import summarize, unsolved_alone

CONFIGS = Path(__file__).parent / "data" / "tokenizer_configs"
PROMPT = {"version": 1, "system": "Solve it.", "user": "{problem}"}


def template_tokenizer(name: str) -> PreTrainedTokenizerFast:
    """A tokenizer with a real model's chat template and special tokens (no real vocabulary:
    only the rendered text matters for prompt assembly)."""
    config = json.loads((CONFIGS / name / "tokenizer_config.json").read_text())
    specials = [t for t in (config.get("bos_token"), config.get("eos_token")) if t]
    vocab = {"[UNK]": 0, **{t: i + 1 for i, t in enumerate(specials)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=config.get("bos_token"),
                                   eos_token=config.get("eos_token"), unk_token="[UNK]",
                                   chat_template=config["chat_template"])


def card(thinking=False, placement=None, kwargs=None):
    return {"name": "t", "prompt": PROMPT, "chat_template_kwargs": kwargs or {}, "thinking": thinking,
            "placement": placement, "max_tokens": 100}


def whole_conversation(tok, c, problem, assistant_content):
    messages = [{"role": "system", "content": PROMPT["system"]}, {"role": "user", "content": problem},
                {"role": "assistant", "content": assistant_content}]
    return tok.apply_chat_template(messages, tokenize=False, **c["chat_template_kwargs"])


COT = "First add 3 and 4 to get 7. Then double it: 14."
REST = " So the answer is \\boxed{14}."


@pytest.mark.parametrize(("name", "c", "full_content"), [
    ("llama-3.1-8b-instruct", card(), COT + REST),
    ("qwen3-0.6b", card(thinking=True, kwargs={"enable_thinking": True}),
     "<think>\n" + COT + "\n</think>\n\nThe answer is \\boxed{14}."),
    ("qwen3-0.6b", card(thinking=True, placement="answer", kwargs={"enable_thinking": True}),
     "<think>\n\n</think>\n\n" + COT + REST),
    ("qwen3-0.6b", card(thinking=True, placement="answer", kwargs={"enable_thinking": False}),
     COT + REST),
])
def test_placed_prefix_is_a_string_prefix_of_the_templates_own_rendering(name, c, full_content):
    tok = template_tokenizer(name)
    prompt, assistant = place(tok, c, "What is (3+4)*2?", COT)
    whole = whole_conversation(tok, c, "What is (3+4)*2?", full_content)
    assert whole.startswith(prompt + assistant), (prompt + assistant, whole)
    assert COT in assistant and whole.count("assistant") == (prompt + assistant).count("assistant")


def test_placement_in_smollm2s_real_template(smollm2_tokenizer):
    c = card()
    prompt, assistant = place(smollm2_tokenizer, c, "What is 3+4?", COT)
    whole = whole_conversation(smollm2_tokenizer, c, "What is 3+4?", COT + REST)
    assert whole.startswith(prompt + assistant) and prompt.endswith("<|im_start|>assistant\n")
    assert "<|im_end|>" not in assistant


def test_think_placement_needs_a_thinking_target():
    with pytest.raises(ValueError, match="does not think"):
        place(template_tokenizer("llama-3.1-8b-instruct"), card(placement="think"), "q", COT)


def test_snapping_to_whitespace_records_the_units_kept():
    text = "alpha beta gamma delta"
    ends = (2, 5, 8, 10, 13, 16, 19, 22)  # two units per word
    assert snap_to_whitespace(text, ends, 3) == (10, 4)  # "alpha beta": 8 is closer to 10 than to 5
    assert snap_to_whitespace(text, ends, 1) == (5, 2)
    assert snap_to_whitespace(text, ends, 0) == (0, 0)
    assert snap_to_whitespace(text, ends, 99) == (22, 8)


def test_cut_source_by_fraction():
    text = "one two three four five six seven eight nine ten"
    src = SourceText("p", 0, text, word_ends(text), True)
    cut, kept = cut_source(src, 0.3)
    assert cut == "one two three" and kept == 3


def test_thinking_tags_are_stripped():
    assert strip_thinking_tags("<think>\nhmm 3+4=7\n</think>\n\nSo \\boxed{7}") == "hmm 3+4=7\n\n\nSo \\boxed{7}"


def test_a_thinking_trace_places_its_thinking_span_only():
    from cot_potential.transfer import placed_text, source_texts_from_traces

    trace = "<think>\nhmm 3+4=7, doubled 14\n</think>\n\nSo the answer is \\boxed{14}."
    assert placed_text(trace, thinking=True, span="thinking") == "hmm 3+4=7, doubled 14"
    assert "boxed" in placed_text(trace, thinking=True, span="whole")
    assert "boxed" in placed_text("3+4=7 so \\boxed{7}", thinking=False, span="thinking")
    # an unclosed block (a truncated trace, or a template that opened <think> in the prompt)
    assert placed_text("hmm 3+4=7 and then", thinking=True, span="thinking") == "hmm 3+4=7 and then"
    traces = pd.DataFrame({"problem_id": ["a"], "trace_id": [0], "text": [trace], "correct": [True]})
    [source] = source_texts_from_traces(traces, None, thinking=True)
    # f = 1 hands over the whole thinking span and nothing of the answer section
    assert cut_source(source, 1.0) == ("hmm 3+4=7, doubled 14", 4)
    with pytest.raises(ValueError, match="placed_span"):
        placed_text(trace, thinking=True, span="answer")


def test_derangement_has_no_fixed_point_and_is_seeded():
    ids = [f"p{i}" for i in range(12)]
    d = derangement(ids, 3)
    assert sorted(d) == sorted(d.values()) == sorted(ids)
    assert all(k != v for k, v in d.items())
    assert d == derangement(list(reversed(ids)), 3) and d != derangement(ids, 4)
    with pytest.raises(ValueError):
        derangement(["only"], 0)


def test_shuffled_prefixes_keep_the_words_in_another_order():
    rng = random.Random(0)
    for text, unit in [("First step. Second step! Third step? Fourth.", "sentence"),
                       ("Eva has 8 apples, she gets 2 more and so she has", "clause"),
                       ("Eva has 8 apples", "word")]:
        out, used = shuffle_sentences(text, rng)
        assert used == unit and out != text and sorted(out.split()) == sorted(text.split())
    assert shuffle_sentences("Hmm", rng) == ("Hmm", "none")


def test_states_gold():
    assert states_gold("so 3 + 4 = 7 apples", "7")
    assert not states_gold("so 3 + 4 = 17 apples", "7")
    assert not states_gold("x = 7.5", "7")
    assert states_gold("a total of 1,234 apples", "1234")
    assert not states_gold("\\frac{1}{2}", "\\frac{1}{2}")  # written, but not stated as a result
    assert states_gold("so x = \\frac{1}{2}.", "\\frac{1}{2}")
    # Issue 20 item 5: the "7" of a step label, an exponent or a factor is no leak.
    assert not states_gold("Step 7: expand x^7 - (x-7) and", "7")


def _sources(ids, correct=True):
    out = []
    for i, pid in enumerate(ids):
        text = f"Problem {pid} needs {i} steps. We add things up carefully. The result is {i}."
        out.append(SourceText(pid, 0, text, word_ends(text), correct))
    return out


def test_build_prefixes_conditions_counts_and_budgets(smollm2_tokenizer):
    ids = ["a", "b", "c"]
    problems = pd.DataFrame({"problem_id": ids, "problem": ["q a", "q b", "q c"], "answer": ["1", "2", "3"]})
    prefixes = build_prefixes(problems, _sources(ids), _sources(ids, correct=False), smollm2_tokenizer,
                              card(), fractions=[0.0, 0.5, 1.0], conditions=["source", "own", "reasonless", "shuffled"],
                              n=4, alone_factor=4, seed=1)
    per = prefixes.groupby("condition").size().to_dict()
    assert per == {"alone": 3, "floor": 3, "source": 6, "own": 6, "reasonless": 6, "shuffled": 6}
    assert "filler" not in per  # not asked for
    assert prefixes.loc[prefixes["condition"] == "alone", "n"].eq(16).all()
    assert prefixes.loc[prefixes["condition"] != "alone", "n"].eq(4).all()
    assert prefixes["prefix_id"].is_unique
    reasonless = prefixes[prefixes["condition"] == "reasonless"]
    assert (reasonless["donor_problem_id"] != reasonless["problem_id"]).all()
    source = prefixes[prefixes["condition"] == "source"].set_index(["problem_id", "fraction"])
    for row in reasonless.to_dict("records"):
        assert abs(row["prefix_units"] - source.loc[(row["problem_id"], row["fraction"]), "prefix_units"]) <= 2
    full = source.xs(1.0, level="fraction")
    assert (full["actual_fraction"] == 1.0).all()
    own = prefixes[prefixes["condition"] == "own"]
    assert own["trace_correct"].eq(False).all() and source["trace_correct"].eq(True).all()
    # The budget does not shrink with the placed prefix: every row, f = 0 too, gets L_max.
    assert prefixes["max_tokens"].eq(100).all() and not prefixes["budget_cut"].any()
    for row in prefixes.to_dict("records"):
        assert smollm2_tokenizer.decode(row["prompt_token_ids"]).endswith(row["prefix_text"])


def test_a_configured_budget_is_cut_only_where_the_context_overflows(smollm2_tokenizer):
    ids = ["a", "b"]
    problems = pd.DataFrame({"problem_id": ids, "problem": ["q a", "q b"], "answer": ["1", "2"]})
    def build(engine):
        return build_prefixes(problems, _sources(ids), [], smollm2_tokenizer, {**card(), "engine": engine},
                              fractions=[0.0, 1.0], conditions=["source"], n=4, alone_factor=4, seed=1, budget=40)

    lengths = build({})["prompt_token_ids"].map(len)
    context = int(lengths.min()) + 40  # f = 0 fits exactly; the whole traces overflow it
    prefixes = build({"max_model_len": context})
    assert prefixes["budget"].eq(40).all()
    assert (prefixes["max_tokens"] == (context - lengths).clip(upper=40, lower=1)).all()
    assert (prefixes["budget_cut"] == (lengths + 40 > context)).all()
    assert prefixes["budget_cut"].any() and not prefixes["budget_cut"].all()


def test_answer_leaks_are_flagged():
    prefixes = pd.DataFrame({"problem_id": ["a", "a", "a"],
                             "prefix_text": ["we add", "3 + 4 = 7 so", "so \\boxed{\\frac{14}{2}}"]})
    problems = pd.DataFrame({"problem_id": ["a"], "problem": ["q"], "answer": ["7"]})

    def verify(pairs):
        return ["correct" if b == "\\frac{14}{2}" else "incorrect" for _, b in pairs]

    assert flag_answer_leaks(prefixes, problems, verify).tolist() == [False, True, True]


def _potentials():
    rows = []
    # problem a: solved alone; b, c: unsolved alone (0 of 16). The source unlocks b at f=0.5.
    for pid, alone in (("a", 10), ("b", 0), ("c", 0)):
        rows.append({"problem_id": pid, "condition": "alone", "fraction": 0.0, "n_correct": alone,
                     "n_samples": 16, "n_no_answer": 0, "trace_correct": None, "answer_leak": False,
                     "actual_fraction": 0.0})
        rows.append({"problem_id": pid, "condition": "floor", "fraction": 0.0, "n_correct": 2 if pid == "a" else 0,
                     "n_samples": 4, "n_no_answer": 1, "trace_correct": None, "answer_leak": False,
                     "actual_fraction": 0.0})
        rows.append({"problem_id": pid, "condition": "source", "fraction": 0.5,
                     "n_correct": {"a": 4, "b": 2, "c": 0}[pid], "n_samples": 4, "n_no_answer": 0,
                     "trace_correct": pid != "c", "answer_leak": pid == "a", "actual_fraction": 0.48})
    df = pd.DataFrame(rows)
    df["potential"] = df["n_correct"] / df["n_samples"]
    df["n_truncated"] = 0
    return df


def test_unsolved_alone_comes_from_the_independent_batch():
    assert unsolved_alone(_potentials()).to_dict() == {"a": False, "b": True, "c": True}


def test_unlock_summary():
    table = summarize(_potentials(), source="s", target="t", dataset="d", n_boot=200)
    row = table.query("condition == 'source' and fraction == 0.5 and source_traces == 'all' and leak_filter == 'all'").iloc[0]
    assert row.n_problems == 3 and row.n_unsolved_alone == 2
    # b: 2 of 4 against 0 of 4 on the floor is no significant rise (Fisher p = 0.21): not
    # unlocked, though one sample was correct.
    assert row.unlocked_rate == 0 and row.any_correct_rate == pytest.approx(0.5)
    assert row.mean_potential == pytest.approx((1 + 0.5 + 0) / 3)
    assert row.mean_potential_unsolved == pytest.approx(0.25)
    assert row.answer_leak_rate == pytest.approx(1 / 3)
    assert row.mean_potential_ci_low <= row.mean_potential <= row.mean_potential_ci_high
    floor = table.query("condition == 'source' and fraction == 0 and leak_filter == 'all'").iloc[0]
    assert floor.unlocked_rate == 0 and floor.any_correct_rate == 0 and floor.no_answer_rate == pytest.approx(0.25)
    no_leak = table.query("condition == 'source' and fraction == 0.5 and source_traces == 'all' and leak_filter == 'no_leak'").iloc[0]
    assert no_leak.n_problems == 2
    correct = table.query("condition == 'source' and fraction == 0.5 and source_traces == 'correct' and leak_filter == 'all'").iloc[0]
    assert correct.n_problems == 2


@pytest.mark.parametrize("potential", [0.0, 0.005, 0.05])
def test_the_exact_unlock_test_keeps_its_level_on_problems_that_never_change(potential):
    """Unsolved problems picked through the alone batch (0 of 4N), a true potential that does
    not change with f: at every f the share called unlocked by the exact test (floor batch as
    reference, Holm over the fractions) is <= alpha + 2 Monte Carlo SE."""
    from cot_potential.unlocks import exact_unlocks

    rng = np.random.default_rng(7)
    n, fractions, alpha, draws = 16, 9, 0.05, 200_000
    selected = rng.binomial(4 * n, potential, size=draws) == 0
    problems = int(selected.sum())
    assert problems > 5_000
    floor = rng.binomial(n, potential, size=problems)
    counts = rng.binomial(n, potential, size=(problems, fractions))
    called = exact_unlocks(counts, np.full(counts.shape, n), floor, np.full(problems, n), alpha)
    rate = called.mean(axis=0)
    se = np.sqrt(alpha * (1 - alpha) / problems)
    assert (rate <= alpha + 2 * se).all(), rate
    if potential > 0:  # the old rule, ">= 1 correct of N", breaks the same bound
        assert ((counts > 0).mean(axis=0) > alpha + 2 * se).all()


def test_the_exact_unlock_test_finds_a_real_rise():
    from cot_potential.unlocks import exact_unlocks

    counts = np.array([[0, 1, 12, 15], [0, 0, 1, 0]])
    called = exact_unlocks(counts, np.full(counts.shape, 16), [0, 0], [16, 16], 0.05)
    assert called.tolist() == [[False, False, True, True], [False, False, False, False]]


def test_unlocked_needs_the_test_and_the_threshold():
    from cot_potential.unlocks import floor_counts, unlock_decisions

    rows = pd.DataFrame({"problem_id": ["a", "a", "b"], "fraction": [0.3, 0.6, 0.6],
                         "n_correct": [6, 14, 40], "n_samples": [16, 16, 64], "majority_correct": [0.0, 1.0, 0.0]})
    floor = floor_counts(pd.DataFrame({"problem_id": ["a", "b"], "condition": "floor",
                                       "n_correct": [0, 0], "n_samples": [16, 16]}))
    decided = unlock_decisions(rows, floor, alpha=0.05, threshold=0.5).set_index(["problem_id", "fraction"])
    # a at 0.3: 6/16 vs 0/16 is significant (p = 0.009, Holm 0.018) but below the threshold.
    assert bool(decided.loc[("a", 0.3), "significant"]) and not decided.loc[("a", 0.3), "unlocked"]
    assert decided.loc[("a", 0.6), "unlocked"] and decided.loc[("b", 0.6), "unlocked"]


def _simulated_targets(rng, planted, *, n=32, low=0.03, jump=0.6, fractions=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
                       conditions=("source",)):
    """Potentials of a target that cannot solve any problem alone (alone 0 of 4N by
    construction) and whose potential jumps by ``jump`` at the problem's planted f* (None: never)."""
    rows = []
    for i, f_star in enumerate(planted):
        pid = f"p{i}"
        rows.append({"problem_id": pid, "condition": "alone", "fraction": 0.0, "n_correct": 0, "n_samples": 4 * n})
        rows.append({"problem_id": pid, "condition": "floor", "fraction": 0.0,
                     "n_correct": int(rng.binomial(n, low)), "n_samples": n})
        for condition in conditions:
            for f in fractions:
                p = low + jump if condition == "source" and f_star is not None and f >= f_star - 1e-9 else low
                rows.append({"problem_id": pid, "condition": condition, "fraction": f,
                             "n_correct": int(rng.binomial(n, p)), "n_samples": n})
    df = pd.DataFrame(rows).assign(n_no_answer=0, n_truncated=0, answer_leak=False, trace_correct=True,
                                   actual_fraction=lambda d: d["fraction"])
    df["potential"] = df["n_correct"] / df["n_samples"]
    return df


@pytest.mark.parametrize("n", [32, 128])
def test_planted_unlocking_fractions_are_recovered(n):
    """A planted jump of 0.6 at a known fraction: f-hat* equals the planted f* for >= 90% of
    problems; problems never unlocked come out censored."""
    from cot_potential.unlocks import fstar

    rng = np.random.default_rng(3)
    fractions = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    planted = [fractions[i % len(fractions)] for i in range(180)] + [None] * 20
    found = fstar(_simulated_targets(rng, planted, n=n, fractions=fractions))
    found = found[found["leak_filter"] == "all"].set_index("problem_id")
    hits = [(f is None and found.loc[f"p{i}", "censored"]) or
            (f is not None and np.isclose(found.loc[f"p{i}", "f_star"], f)) for i, f in enumerate(planted)]
    assert np.mean(hits) >= 0.9, np.mean(hits)


def test_cumulative_share_and_paired_tests():
    from cot_potential.unlocks import cumulative_unlocked, fstar, paired_tests

    rng = np.random.default_rng(5)
    planted = [0.2] * 30 + [None] * 10
    potentials = _simulated_targets(rng, planted, fractions=(0.1, 0.2, 0.4), conditions=("source", "reasonless"))
    found = fstar(potentials)
    curve = cumulative_unlocked(found, [0.1, 0.2, 0.4]).query("leak_filter == 'all'").set_index(["condition", "fraction"])
    assert curve.loc[("source", 0.1), "share"] <= 0.1 and curve.loc[("source", 0.2), "share"] >= 0.6
    assert curve.loc[("reasonless", 0.4), "share"] <= 0.1 and (curve["n_unsolved"] == 40).all()
    assert (curve["ci_low"] <= curve["share"]).all() and (curve["share"] <= curve["ci_high"]).all()
    paired = paired_tests(potentials).query("leak_filter == 'no_leak'").set_index("fraction")
    assert paired["comparison"].eq("source vs reasonless").all() and paired["primary"].tolist() == [False, True, False]
    at = paired.loc[0.2]
    assert at["source_only"] >= 20 and at["control_only"] == 0 and at["p_value"] < 1e-5
    assert at["both"] + at["source_only"] + at["control_only"] + at["neither"] == at["n_problems"] == 40
    assert (paired["p_holm"] >= paired["p_value"]).all()


def test_the_table_job_writes_fstar_and_paired_tables_and_the_unlocked_figure(tmp_path):
    from cot_potential.report import transfer_figures_job
    from cot_potential.tables import write_table
    from cot_potential.unlocks import table_job

    potentials = _simulated_targets(np.random.default_rng(1), [0.2] * 6 + [None] * 2, fractions=(0.2, 0.6),
                                    conditions=("source", "reasonless", "shuffled"))
    write_table(potentials, tmp_path / "pot.parquet")
    out = {name: str(tmp_path / f"{name}.csv") for name in ("transfer", "transfer_fstar", "transfer_paired")}
    table_job([str(tmp_path / "pot.parquet")], [{"source": "s", "target": "t", "dataset": "d"}], out["transfer"],
              seed=0, config={}, fstar_out=out["transfer_fstar"], paired_out=out["transfer_paired"])
    fstars, paired = pd.read_csv(out["transfer_fstar"]), pd.read_csv(out["transfer_paired"])
    assert len(fstars) == 8 * 3 * 2 and set(fstars["source"]) == {"s"}
    assert set(paired["comparison"]) == {"source vs reasonless", "source vs shuffled"}  # no filler measured
    primary = paired[paired["primary"]]  # f = 0.2, source vs reasonless, prefixes not stating the answer
    assert primary[["fraction", "comparison", "leak_filter"]].values.tolist() == [[0.2, "source vs reasonless", "no_leak"]]
    transfer_figures_job(out["transfer"], str(tmp_path / "pot.parquet"), str(tmp_path / "fig"), source="s",
                         target="t", dataset="d", fstar_path=out["transfer_fstar"])
    assert (tmp_path / "fig" / "unlocked.png").stat().st_size > 1000


def test_the_filler_prefix_is_neutral_text_as_long_as_the_real_one_in_target_tokens(smollm2_tokenizer):
    from cot_potential.transfer import encode_text

    ids = ["a", "b"]
    problems = pd.DataFrame({"problem_id": ids, "problem": ["q a", "q b"], "answer": ["1", "2"]})
    neutral = "The path runs past a row of tall trees and a quiet pond."
    prefixes = build_prefixes(problems, _sources(ids), [], smollm2_tokenizer, card(), fractions=[0.0, 0.5, 1.0],
                              conditions=["source", "filler"], n=4, alone_factor=4, seed=1, filler_text=neutral)
    source = prefixes[prefixes["condition"] == "source"].set_index(["problem_id", "fraction"])
    filler = prefixes[prefixes["condition"] == "filler"].set_index(["problem_id", "fraction"])
    assert len(filler) == len(source) == 4 and filler["trace_correct"].isna().all()
    for key, row in filler.iterrows():
        assert row["prefix_text"] and set(row["prefix_text"].split()) <= set(neutral.split())
        real = len(encode_text(smollm2_tokenizer, source.loc[key, "prefix_text"]))
        assert abs(len(encode_text(smollm2_tokenizer, row["prefix_text"])) - real) <= 2


def test_the_power_of_the_unlock_and_paired_tests():
    from cot_potential.unlocks import paired_power, unlock_power

    assert unlock_power(1.0, 6, n_fractions=2) == pytest.approx(1.0)
    assert unlock_power(0.0, 6, n_fractions=2) == 0
    assert 0.3 < unlock_power(0.7, 6, n_fractions=2) < 0.5 < unlock_power(0.7, 128, n_fractions=9)
    # 7 problems all unlocked by the source only: p = 2 / 2^7 < 0.05; 5 cannot reach 0.05
    assert paired_power(7, 1.0, 0.0) == pytest.approx(1.0) and paired_power(5, 1.0, 0.0) == 0
    assert paired_power(30, 0.3, 0.3) <= 0.05  # no difference: at most the level
    assert paired_power(10, 0.8, 0.0) > paired_power(7, 0.8, 0.0) > 0.5
