"""The word-level maze tokenizer in HF format."""

from __future__ import annotations

import random

import pytest

from cot_potential.mazes.astar import astar, full_text
from cot_potential.mazes.generators import generate
from cot_potential.mazes.tokenizer import build_tokenizer, save_tokenizer, vocabulary


def test_every_word_of_a_large_maze_sequence_is_one_known_token():
    maze = generate("searchformer", random.Random(1), 30)
    text = full_text(maze, astar(maze))
    tok = build_tokenizer(30, 4096)
    ids = tok.encode(text)
    assert len(ids) == len(text.split()) and tok.unk_token_id not in ids
    assert tok.decode(ids) == " " + text


def test_saved_tokenizer_loads_with_auto_tokenizer_and_ends_with_end(tmp_path):
    from transformers import AutoTokenizer

    save_tokenizer(8, 512, tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert tok.convert_ids_to_tokens(tok.eos_token_id) == "\u2581end" and tok.pad_token == "<pad>"
    assert len(tok) == len(vocabulary(8))
    ids = tok.encode("solution plan 1 2 end")
    assert ids[-1] == tok.eos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == " solution plan 1 2"


def test_prefix_text_plus_continuation_text_is_the_whole_text():
    tok = build_tokenizer(8, 512)
    ids = tok.encode("reasoning close 0 0 c0 c2 create 1 0 c1 c1 solution plan 0 0")
    for cut in range(1, len(ids)):
        assert tok.decode(ids[:cut]) + tok.decode(ids[cut:]) == tok.decode(ids)


def test_vocabulary_size_follows_the_grid():
    assert len(vocabulary(7)) == 2 + 10 + 7 + 50
    with pytest.raises(ValueError):
        vocabulary(1)


def test_incremental_decoding_as_vllm_does_it_keeps_word_boundaries_and_drops_end():
    """vLLM decodes a completion with a DecodeStream primed with the prompt ids: its text starts
    with a space, so prefix text + completion text never glues two words together."""
    from tokenizers.decoders import DecodeStream

    tok = build_tokenizer(8, 512)
    prompt = tok.encode("query start 1 1 goal 2 2 wall 0 0 reasoning close 1 1 c0 c2 create 1")
    stream = DecodeStream(ids=prompt, skip_special_tokens=True)
    text = "".join(stream.step(tok._tokenizer, i) or "" for i in tok.encode("2 c1 c1 solution plan 1 1 end"))
    assert text == " 2 c1 c1 solution plan 1 1"
