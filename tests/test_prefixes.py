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
