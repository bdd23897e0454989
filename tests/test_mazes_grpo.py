"""GRPO post-training on tiny models: group-normalised advantages, the loss's two terms, and a
toy task whose rewarded output must become likelier (a sign error fails it)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from cot_potential.mazes.grpo import (GrpoSettings, Sample, backward_grpo, completion_logprobs,  # noqa: E402
                                      group_advantages, grpo_loss, grpo_step, plan_reward, reference_model)


def tiny_model(vocab: int = 8, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=1, num_key_value_heads=1, max_position_embeddings=64,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0)
    return LlamaForCausalLM(config)


def samples_of(prompts, completions, group_size):
    return [Sample(i // group_size, tuple(prompts[i // group_size]), tuple(c), True) for i, c in enumerate(completions)]


def test_advantages_are_normalised_within_each_group_and_zero_where_all_rewards_agree():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    adv = group_advantages(rewards)
    assert torch.isfinite(adv).all()
    assert torch.allclose(adv[0], torch.tensor([0.5, -0.5, -0.5, 0.5]) / (0.5774 + 1e-4), atol=1e-3)
    assert adv[0].sum().abs() < 1e-6 and (adv[1:] == 0).all()
    assert (group_advantages(torch.tensor([[1.0], [0.0]])) == 0).all()  # a group of one: no signal


def _step_inputs(model, group_size=4):
    prompts = [[1, 3], [1, 4, 5]]
    completions = [[3, 4, 2], [5, 2], [6, 6, 6, 2], [2]] * 2
    samples = samples_of(prompts, completions[: 2 * group_size], group_size)
    return samples, torch.zeros(len(samples))


def test_equal_rewards_leave_no_policy_gradient_term_and_no_nan():
    model = tiny_model()
    reference = reference_model(tiny_model(seed=1))  # another model: the KL term is not zero
    samples, _ = _step_inputs(model)
    advantages = group_advantages(torch.ones(2, 4)).view(-1)
    logp, mask = completion_logprobs(model, samples, pad_id=0)
    with torch.no_grad():
        ref_logp, _ = completion_logprobs(reference, samples, pad_id=0)
    n_tokens = int(mask.sum())
    loss, kl = grpo_loss(logp, ref_logp, mask, advantages, 0.1, "token", len(samples), n_tokens)
    assert torch.isfinite(loss) and float(kl) > 0
    # the whole loss is the KL term: the policy-gradient term vanished with the advantages
    assert math.isclose(float(loss), 0.1 * float(kl) / n_tokens, rel_tol=1e-5)


def test_equal_rewards_and_no_kl_give_a_zero_gradient():
    model = tiny_model()
    reference = reference_model(tiny_model(seed=1))
    samples, _ = _step_inputs(model)
    advantages = group_advantages(torch.zeros(2, 4)).view(-1)
    for aggregate in ("sequence", "token"):
        settings = GrpoSettings(kl_coef=0.0, aggregate=aggregate, micro_batches=2)
        stats = backward_grpo(model, reference, samples, advantages, settings, pad_id=0)
        assert math.isfinite(stats["loss"]) and stats["loss"] == 0.0
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.count_nonzero(g) == 0 for g in grads)
        model.zero_grad(set_to_none=True)


def test_micro_batches_give_the_gradient_of_the_whole_step():
    samples, _ = _step_inputs(tiny_model())
    advantages = torch.tensor([1.0, -1.0, 0.5, -0.5, 0.0, 2.0, -2.0, 0.0])
    grads = []
    for parts in (1, 3):
        model, reference = tiny_model(), reference_model(tiny_model(seed=1))
        backward_grpo(model, reference, samples, advantages, GrpoSettings(kl_coef=0.1, micro_batches=parts), pad_id=0)
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def _probability_of(model, prompt, token):
    with torch.no_grad():
        return float(torch.softmax(model(input_ids=torch.tensor([prompt])).logits[0, -1], -1)[token])


@pytest.mark.parametrize("aggregate", ["sequence", "token"])
def test_a_rewarded_output_becomes_likelier_within_a_few_steps(aggregate):
    """Toy task: one token after the prompt; reward 1 for token 5 only."""
    model = tiny_model()
    reference = reference_model(model)
    prompt, target = [1, 3], 5
    before = _probability_of(model, prompt, target)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.03, weight_decay=0.0)
    settings = GrpoSettings(group_size=16, mazes_per_step=2, kl_coef=0.04, aggregate=aggregate)

    def reward(sample):
        return float(sample.completion_ids[0] == target)

    for step in range(8):
        stats = grpo_step(model, reference, optimizer, [prompt, prompt], reward, settings, max_new_tokens=1,
                          pad_id=0, eos_id=2, seed=step)
        assert math.isfinite(stats["loss"])
    after = _probability_of(model, prompt, target)
    assert before < 0.3 and after > before + 0.3, (before, after)


def test_the_reward_is_the_graders_verdict_on_the_plan_alone():
    from cot_potential.mazes.tokenizer import build_tokenizer

    tok = build_tokenizer(5, 256)
    mazes = pd.DataFrame({"problem": ["query start 0 0 goal 1 0"], "width": [5], "height": [5]})
    reward = plan_reward(tok, mazes)

    def sample(text, finished=True):
        ids = tok.encode(text) + ([tok.eos_token_id] if finished else [])
        return Sample(0, tuple(tok.encode(mazes["problem"][0])), tuple(ids), finished)

    assert reward(sample("solution plan 0 0 plan 1 0")) == 1.0
    # an invalid trace does not cost the reward: only the plan is graded
    assert reward(sample("reasoning close 4 4 c9 c9 solution plan 0 0 plan 1 0")) == 1.0
    assert reward(sample("solution plan 0 0 plan 0 1 plan 1 1 plan 1 0")) == 0.0  # legal, not optimal
    assert reward(sample("solution plan 0 0 plan 1 0", finished=False)) == 0.0  # cut off
