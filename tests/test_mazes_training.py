"""Training from scratch: loss masking, schedule, a few real steps, an HF checkpoint."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cot_potential.mazes.datasets import training_mazes, training_sequences
from cot_potential.mazes.tokenizer import build_tokenizer
from cot_potential.mazes.training import (Architecture, Schedule, backward_batch, collate, encode,
                                          learning_rate, length_grouped_batches, length_sorted_parts,
                                          save_checkpoint, train, uniform_batches)

TINY = Architecture(hidden_size=32, layers=1, heads=1, intermediate_size=64, max_length=256)


def test_the_loss_covers_the_completion_only():
    tok = build_tokenizer(5, 256)
    examples = encode(tok, ["query start 0 0 goal 1 0", "query start 0 0 goal 0 1 wall 1 1"],
                      ["solution plan 0 0 plan 1 0 end", "solution plan 0 0 plan 0 1 end"])
    batch = collate(examples, tok.pad_token_id)
    for row, (ids, n_prompt) in enumerate(examples):
        labels = batch["labels"][row].tolist()
        assert labels[:n_prompt] == [-100] * n_prompt
        assert labels[n_prompt:len(ids)] == ids[n_prompt:] and labels[-1] in (tok.eos_token_id, -100)
        assert batch["attention_mask"][row].sum() == len(ids)
    assert batch["labels"][0].tolist()[len(examples[0][0]):] == [-100] * (batch["labels"].shape[1] - len(examples[0][0]))


def _batches(lengths, n, seed, batch_size=8):
    import torch

    batches = length_grouped_batches(lengths, batch_size, torch.Generator().manual_seed(seed), pool_batches=4)
    return [next(batches) for _ in range(n)]


def test_length_grouped_batches_split_a_sorted_random_pool():
    import random

    lengths = random.Random(0).choices(range(20, 300), k=500)
    pool = _batches(lengths, 4, seed=1)
    assert all(len(b) == 8 and all(0 <= i < 500 for i in b) for b in pool)
    # The pool's batches are consecutive runs of its draw sorted by length: their ranges do not overlap.
    spans = sorted((min(lengths[i] for i in b), max(lengths[i] for i in b)) for b in pool)
    assert all(hi <= next_lo for (_, hi), (next_lo, _) in zip(spans, spans[1:]))
    assert _batches(lengths, 12, seed=1) == _batches(lengths, 12, seed=1) != _batches(lengths, 12, seed=2)


def test_length_grouped_batches_draw_every_length_alike():
    lengths = [10] * 250 + [200] * 250
    drawn = [i for b in _batches(lengths, 800, seed=3) for i in b]
    assert abs(sum(lengths[i] == 10 for i in drawn) / len(drawn) - 0.5) < 0.03
    assert len(set(drawn)) == 500


def test_length_sorted_parts_cover_the_batch_in_order_of_length():
    examples = [([0] * n, 1) for n in (9, 3, 7, 5, 1)]
    parts = length_sorted_parts(examples, 2)
    assert [[len(ids) for ids, _ in part] for part in parts] == [[1, 3], [5, 7, 9]]
    assert len(length_sorted_parts(examples, 9)) == 5 and len(length_sorted_parts(examples, 1)) == 1


@pytest.mark.parametrize("micro_batches", [1, 3])
def test_micro_batches_give_the_whole_batch_loss_and_gradient(micro_batches):
    import torch
    from transformers import LlamaForCausalLM

    mazes = training_mazes({"generator": "wilson", "sizes": [5], "n_mazes": 7, "seed": 0}, [])
    sequences = training_sequences(mazes, "correct", 0)
    tok = build_tokenizer(5, 256)
    examples = encode(tok, list(sequences["prompt"]), list(sequences["completion"]))
    assert len({len(ids) for ids, _ in examples}) > 1
    torch.manual_seed(0)
    model = LlamaForCausalLM(TINY.llama_config(tok))
    whole = model(**collate(examples, tok.pad_token_id)).loss
    whole.backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    assert backward_batch(model, examples, tok.pad_token_id, micro_batches) == pytest.approx(whole.item(), rel=1e-5)
    for got, want in zip((p.grad for p in model.parameters()), expected):
        assert torch.allclose(got, want, atol=1e-6, rtol=1e-4)


def test_uniform_batches_are_seeded_draws_in_range():
    import torch

    def draw(seed):
        batches = uniform_batches(50, 8, torch.Generator().manual_seed(seed))
        return [next(batches) for _ in range(5)]

    assert draw(0) == draw(0) != draw(1)
    assert all(len(b) == 8 and all(0 <= i < 50 for i in b) for b in draw(0))


def test_training_with_length_grouped_batches_runs_and_lowers_the_loss():
    mazes = training_mazes({"generator": "wilson", "sizes": [4], "n_mazes": 8, "seed": 0}, [])
    _, curve = train(training_sequences(mazes, "correct", 0), pd.DataFrame(), build_tokenizer(4, 256), TINY,
                     Schedule(steps=20, batch_size=8, lr=3e-3, warmup_steps=2, eval_every=10,
                              group_by_length=True), seed=0, threads=1)
    assert curve["loss"].iloc[2] < curve["loss"].iloc[1]


def test_learning_rate_warms_up_then_decays_to_a_tenth():
    s = Schedule(steps=100, lr=1.0, warmup_steps=10)
    assert learning_rate(0, s) == pytest.approx(0.1) and learning_rate(9, s) == pytest.approx(1.0)
    assert learning_rate(10, s) == pytest.approx(1.0) and learning_rate(100, s) == pytest.approx(0.1)
    assert all(learning_rate(t, s) >= learning_rate(t + 1, s) for t in range(10, 100))


def test_a_few_steps_lower_the_loss_and_the_checkpoint_reloads(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    mazes = training_mazes({"generator": "wilson", "sizes": [4], "n_mazes": 8, "seed": 0}, [])
    sequences = training_sequences(mazes, "correct", 0)
    tok = build_tokenizer(4, 256)
    model, curve = train(sequences, mazes.head(2), tok, TINY, Schedule(steps=30, batch_size=8, lr=3e-3,
                         warmup_steps=3, eval_every=15), seed=0, threads=1)
    assert curve["step"].tolist() == [0, 15, 30]
    assert curve["loss"].iloc[2] < curve["loss"].iloc[1] and math.isnan(curve["loss"].iloc[0])
    assert curve["plan_accuracy"].between(0, 1).all() and curve["trace_validity"].between(0, 1).all()
    save_checkpoint(model, tok, tmp_path / "ckpt")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")
    reloaded_tok = AutoTokenizer.from_pretrained(tmp_path / "ckpt")
    ids = torch.tensor([reloaded_tok.encode(sequences["prompt"].iloc[0])])
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, model.to("cpu")(ids).logits, atol=1e-5)
    assert (tmp_path / "ckpt" / "generation_config.json").is_file()
    assert loaded.config.eos_token_id == reloaded_tok.eos_token_id


def test_heads_can_be_narrower_than_the_width_allows():
    tok = build_tokenizer(5, 256)
    config = Architecture(hidden_size=64, heads=4, head_dim=32).llama_config(tok)
    assert (config.num_attention_heads, config.head_dim, config.hidden_size) == (4, 32, 64)
    assert Architecture(hidden_size=64, heads=2).llama_config(tok).head_dim == 32


def test_initial_weights_follow_the_architecture():
    import torch
    from transformers import LlamaForCausalLM

    tok = build_tokenizer(5, 256)
    torch.manual_seed(0)
    for init_std in (0.02, 0.05):
        model = LlamaForCausalLM(Architecture(hidden_size=64, heads=2, init_std=init_std).llama_config(tok))
        for weight in (model.model.layers[0].mlp.up_proj.weight, model.model.embed_tokens.weight):
            assert abs(float(weight.detach().std()) - init_std) < 0.1 * init_std


def test_sequences_longer_than_the_model_are_refused():
    mazes = training_mazes({"generator": "wilson", "sizes": [7], "n_mazes": 4, "seed": 0}, [])
    short = Architecture(hidden_size=32, layers=1, heads=1, intermediate_size=64, max_length=32)
    with pytest.raises(ValueError, match="max_length 32"):
        train(training_sequences(mazes, "correct", 0), pd.DataFrame(), build_tokenizer(7, 32), short,
              Schedule(steps=1), seed=0)
