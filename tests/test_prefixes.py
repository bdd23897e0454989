import pandas as pd
import pytest

from cot_potential.prefixes import CutSettings, cut_points, make_prefixes
from cot_potential.traces import content_end, thinking_span


def test_fraction_cuts_round_and_merge_duplicates():
    cuts = cut_points(0, 10, CutSettings(fractions=(0, 0.04, 0.05, 0.5, 1.0)))
    assert [c.token for c in cuts] == [0, 5, 10]  # 0.04 and 0.05 of 10 both round to 0 -> merged
    assert [c.nominal for c in cuts] == [0, 0.5, 1.0]
    assert cuts[1].fraction == 0.5


def test_default_grid_is_every_five_percent():
    cuts = cut_points(0, 200, CutSettings())
    assert len(cuts) == 21 and cuts[-1].token == 200


def test_stride_cuts_end_at_the_span_end():
    assert [c.token for c in cut_points(3, 13, CutSettings(mode="stride", stride=4))] == [3, 7, 11, 13]


def test_boundary_cuts_follow_sentences_and_lines():
    pieces = ["First", " step", ".", " Then", " more", ".\n", "End", "."]
    cuts = cut_points(0, len(pieces), CutSettings(mode="boundary"), pieces)
    assert [c.token for c in cuts] == [0, 3, 6, 8]
    few = cut_points(0, len(pieces), CutSettings(mode="boundary", max_cuts=2), pieces)
    assert [c.token for c in few] == [0, 8]


def test_content_end_drops_the_stop_token_only():
    assert content_end([5, 6, 2], {2}) == 2
    assert content_end([5, 6, 7], {2}) == 3


def test_thinking_span():
    think = {"<think>": 100, "</think>": 101}
    assert thinking_span([1], [100, 7, 8, 101, 9, 2], 5, think) == (1, 3)
    assert thinking_span([1, 100], [7, 8, 101, 9], 4, think) == (0, 2)  # opened by the template
    assert thinking_span([1], [100, 7, 8], 3, think) == (1, 3)  # never closed
    assert thinking_span([1], [7], 1, None) == (-1, -1)


def test_invalid_settings_are_rejected():
    with pytest.raises(ValueError):
        CutSettings(mode="random")
    with pytest.raises(ValueError):
        CutSettings(fractions=(1.5,))


def test_prefix_ids_are_prompt_ids_plus_trace_ids_with_a_real_tokenizer(smollm2_tokenizer):
    tok = smollm2_tokenizer
    text = "We add 3 and 4 to get 7. The answer is \\boxed{7}."
    ids = tok.encode(text, add_special_tokens=False) + [tok.eos_token_id]
    prompt = tok.encode("<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)
    trace = pd.DataFrame([{
        "problem_id": "p", "trace_id": 0, "prompt_token_ids": prompt, "token_ids": ids,
        "content_end": len(ids) - 1, "think_start": -1, "think_end": -1, "correct": True,
    }])
    card = {"thinking": False, "max_tokens": 100}
    prefixes = make_prefixes(trace, tok, card, CutSettings(fractions=(0, 0.3, 0.6, 1.0)))
    assert prefixes["cut_token"].max() == len(ids) - 1  # never the stop token
    for row in prefixes.to_dict("records"):
        t = row["cut_token"]
        assert row["prompt_token_ids"] == prompt + ids[:t]
        assert row["max_tokens"] == 100 - t
        assert text.startswith(row["prefix_text"]) and row["char_offset"] == len(row["prefix_text"])
    assert prefixes["prefix_text"].iloc[-1] == text


def test_an_answer_cut_skips_exponents_factors_and_step_labels(smollm2_tokenizer):
    """The answer 2 is written as ``Step 2``, ``x^2`` and ``(x-2)`` long before the trace
    states it: the answer cut lands before ``x = 2``, not at the first "2"."""
    tok = smollm2_tokenizer
    text = "Step 2: x^2 - 4 = 0 factors as (x-2)(x+2) = 0, and x > 0, so x = 2. The answer is \\boxed{2}."
    ids = tok.encode(text, add_special_tokens=False) + [tok.eos_token_id]
    trace = {"problem_id": "p", "trace_id": 0, "prompt_token_ids": [1], "token_ids": ids,
             "content_end": len(ids) - 1, "think_start": -1, "think_end": -1, "correct": True, "answer": "2"}
    prefixes = make_prefixes(pd.DataFrame([trace]), tok, {"thinking": False, "max_tokens": 200},
                             CutSettings(fractions=(0, 1.0), answer_cuts=(0,)))
    just_before = prefixes.loc[prefixes["answer_cut"], "prefix_text"].iloc[0]
    assert just_before.rstrip().endswith("so x =")


def test_answer_cuts_end_just_before_the_answer_and_a_few_tokens_earlier(smollm2_tokenizer):
    tok = smollm2_tokenizer
    text = "Tom has 3 apples and gets 5 more, so 3 + 5 = 8 apples. The answer is \\boxed{8}."
    ids = tok.encode(text, add_special_tokens=False) + [tok.eos_token_id]
    trace = {"problem_id": "p", "trace_id": 0, "prompt_token_ids": [1, 2], "token_ids": ids,
             "content_end": len(ids) - 1, "think_start": -1, "think_end": -1, "correct": True, "answer": "8"}
    card = {"thinking": False, "max_tokens": 200}
    settings = CutSettings(fractions=(0, 1.0), answer_cuts=(0, 3))
    prefixes = make_prefixes(pd.DataFrame([trace]), tok, card, settings)
    assert list(prefixes["cut_index"]) == list(range(len(prefixes)))
    assert prefixes["cut_token"].is_monotonic_increasing
    answer = prefixes[prefixes["answer_cut"]].set_index("answer_offset")
    assert set(answer.index) == {0, 3} and not answer["grid_cut"].any()
    just_before = answer.loc[0, "prefix_text"]
    assert text.startswith(just_before) and just_before.rstrip().endswith("3 + 5 =")
    assert "8" not in just_before
    assert answer.loc[3, "cut_token"] == answer.loc[0, "cut_token"] - 3
    assert (prefixes["answer_token"] == answer.loc[0, "cut_token"]).all()
    assert prefixes["grid_cut"].sum() == 2 and (prefixes.loc[~prefixes["grid_cut"], "nominal_fraction"].isna()).all()
    wrong = make_prefixes(pd.DataFrame([{**trace, "correct": False}]), tok, card, settings)
    assert not wrong["answer_cut"].any() and (wrong["answer_token"] == -1).all()
    answered = make_prefixes(pd.DataFrame([{**trace, "correct": False}]), tok, card,
                             CutSettings(fractions=(0, 1.0), answer_cuts=(0,), answer_cuts_for="answered"))
    assert answered["answer_cut"].sum() == 1


def test_an_answer_cut_in_a_thinking_span_finds_an_answer_stated_and_then_checked(smollm2_tokenizer):
    """The span ends before the answer section; the box there confirms the thinking's x = 7."""
    tok = smollm2_tokenizer
    thinking = tok.encode("We solve 3x = 21, so x = 7. Check: 3 * 7 = 21, right.", add_special_tokens=False)
    answer = tok.encode(" The answer is \\boxed{7}.", add_special_tokens=False)
    ids = thinking + answer + [tok.eos_token_id]
    trace = {"problem_id": "p", "trace_id": 0, "prompt_token_ids": [1], "token_ids": ids,
             "content_end": len(ids) - 1, "think_start": 0, "think_end": len(thinking), "correct": True,
             "answer": "7"}
    prefixes = make_prefixes(pd.DataFrame([trace]), tok, {"thinking": True, "max_tokens": 200},
                             CutSettings(fractions=(0, 1.0), answer_cuts=(0,)))
    assert prefixes["cut_token"].max() <= len(thinking)
    assert prefixes.loc[prefixes["answer_cut"], "prefix_text"].iloc[0].rstrip().endswith("so x =")


def test_an_answer_cut_on_a_grid_cut_marks_it_instead_of_adding_one():
    from cot_potential.prefixes import Cut, with_answer_cuts

    grid = [Cut(0, 0.0, 0.0), Cut(5, 0.5, 0.5), Cut(10, 1.0, 1.0)]
    cuts = with_answer_cuts(grid, 5, 0, 10, CutSettings(answer_cuts=(0, 2, 9)))
    assert [(c.token, c.grid, c.answer_offset) for c in cuts] == [
        (0, True, 9), (3, False, 2), (5, True, 0), (10, True, -1)]
    with pytest.raises(ValueError):
        CutSettings(answer_cuts=(-1,))
