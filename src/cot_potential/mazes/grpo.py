"""GRPO post-training of a trained maze model (Shao et al. 2024), as the maze paper post-trains
its trace models: the reward looks at the plan alone, never at the trace.

Each step draws ``mazes_per_step`` training mazes (a seeded draw) and samples ``group_size``
completions of each from the current model (``temperature``). A completion's reward is 1 when
the ``maze_plan`` grader calls its plan correct (legal and optimal, the criterion of plan
accuracy; a completion cut off by the length limit is not), else 0. Rewards are normalised
within each maze's group, ``A = (r - mean) / (std + 1e-4)``, and set to 0 where the group's
rewards are all equal (std 0: no signal, and no division by zero). One gradient step then
minimises, over the step's completions and their tokens,

    -A * pi/pi_old  +  kl_coef * KL_t,    KL_t = exp(ref - logp) - (ref - logp) - 1

with ``ref`` the log-probability under the starting model (frozen) and ``KL_t`` the
per-token estimator of DeepSeekMath (k3: unbiased, never negative). Each batch of samples
gets one update, so ``pi_old`` is the current model (the ratio is 1 with gradient
``grad log pi``) and PPO's clip, which only binds from the second update on, is left out.
``aggregate`` says how tokens are averaged: ``sequence`` (each completion's tokens, then the
completions: DeepSeekMath's GRPO) or ``token`` (all tokens of the step at once).

Every ``eval_every`` steps the model plans ``eval_mazes`` held-out mazes greedily, as the
training curve does (``training.evaluate_plans``).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

# Added to a group's standard deviation before dividing (as TRL does): rewards are 0/1, so a
# group that is not all alike has std >= 0.35 and the constant changes nothing there.
STD_EPS = 1e-4


@dataclass(frozen=True)
class GrpoSettings:
    """``mazes.grpo`` of the config (without ``runs``)."""

    steps: int = 100
    mazes_per_step: int = 8
    group_size: int = 8
    lr: float = 1e-4
    warmup_steps: int = 0
    kl_coef: float = 0.04
    temperature: float = 1.0
    aggregate: str = "sequence"
    micro_batches: int = 1
    eval_every: int = 25
    eval_mazes: int = 64


@dataclass(frozen=True)
class Sample:
    """One sampled completion: token ids after the prompt (``end`` included when it came)."""

    prompt: int  # index of its prompt
    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    finished: bool  # ended with the end-of-sequence token (else: cut off by the length limit)


def group_advantages(rewards: Any) -> Any:
    """``rewards``: [groups, group_size] -> advantages of the same shape (0 where std is 0)."""
    import torch

    rewards = rewards.float()
    mean = rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, keepdim=True) if rewards.shape[1] > 1 else torch.zeros_like(mean)
    return torch.where(std > 0, (rewards - mean) / (std + STD_EPS), torch.zeros_like(rewards))


def sample_groups(model: Any, prompts: list[list[int]], group_size: int, max_new_tokens: int,
                  temperature: float, pad_id: int, eos_id: int, seed: int) -> list[Sample]:
    """``group_size`` completions of every prompt (left-padded batch), seeded."""
    import torch

    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt)
        mask[row, width - len(prompt):] = 1
    torch.manual_seed(seed)
    model.eval()
    with torch.no_grad():
        out = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                             do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                             num_return_sequences=group_size, max_new_tokens=max_new_tokens,
                             pad_token_id=pad_id, eos_token_id=eos_id)
    model.train()
    samples = []
    for row, seq in enumerate(out[:, width:].tolist()):
        prompt = row // group_size
        finished = eos_id in seq
        completion = seq[: seq.index(eos_id) + 1] if finished else seq
        samples.append(Sample(prompt, tuple(prompts[prompt]), tuple(completion), finished))
    return samples


def completion_logprobs(model: Any, samples: list[Sample], pad_id: int) -> tuple[Any, Any]:
    """Log-probabilities of each sample's completion tokens under ``model`` and their mask,
    [samples, longest completion] (right-padded)."""
    import torch

    seqs = [list(s.prompt_ids) + list(s.completion_ids) for s in samples]
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq)
    # Right padding under the causal mask: no real token sees a pad, as in training.
    logits = model(input_ids=ids.to(model.device)).logits[:, :-1].float()
    token_logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None].to(model.device))[..., 0]
    longest = max(len(s.completion_ids) for s in samples)
    logp = torch.zeros((len(samples), longest), device=model.device)
    mask = torch.zeros((len(samples), longest), device=model.device)
    for row, s in enumerate(samples):
        start, n = len(s.prompt_ids) - 1, len(s.completion_ids)
        logp[row, :n] = token_logp[row, start:start + n]
        mask[row, :n] = 1
    return logp, mask


def grpo_loss(logp: Any, ref_logp: Any, mask: Any, advantages: Any, kl_coef: float, aggregate: str,
              n_sequences: int, n_tokens: int) -> tuple[Any, Any]:
    """The loss of a part of the step's samples, scaled so the parts sum to the step's loss
    (``n_sequences`` and ``n_tokens`` are the whole step's), and the part's summed KL."""
    import torch

    ratio = torch.exp(logp - logp.detach())
    delta = ref_logp - logp
    kl = torch.exp(delta) - delta - 1
    per_token = (-advantages[:, None] * ratio + kl_coef * kl) * mask
    if aggregate == "sequence":
        loss = (per_token.sum(dim=1) / mask.sum(dim=1).clamp(min=1)).sum() / n_sequences
    elif aggregate == "token":
        loss = per_token.sum() / max(n_tokens, 1)
    else:
        raise ValueError(f"aggregate must be 'sequence' or 'token', got {aggregate!r}")
    return loss, (kl * mask).sum().detach()


def backward_grpo(model: Any, reference: Any, samples: list[Sample], advantages: Any, settings: GrpoSettings,
                  pad_id: int) -> dict[str, float]:
    """Backpropagate the step's loss in ``micro_batches`` length-sorted parts (the same gradient)."""
    import torch

    order = sorted(range(len(samples)), key=lambda i: len(samples[i].prompt_ids) + len(samples[i].completion_ids))
    parts = max(1, min(settings.micro_batches, len(order)))
    n_tokens = sum(len(s.completion_ids) for s in samples)
    loss_sum = kl_sum = 0.0
    for p in range(parts):
        rows = order[p * len(order) // parts:(p + 1) * len(order) // parts]
        part = [samples[i] for i in rows]
        with torch.no_grad():
            ref_logp, _ = completion_logprobs(reference, part, pad_id)
        logp, mask = completion_logprobs(model, part, pad_id)
        loss, kl = grpo_loss(logp, ref_logp, mask, advantages[rows].to(logp.device), settings.kl_coef,
                             settings.aggregate, len(samples), n_tokens)
        loss.backward()
        loss_sum += float(loss.detach())
        kl_sum += float(kl)
    return {"loss": loss_sum, "kl": kl_sum / max(n_tokens, 1)}


Reward = Callable[[Sample], float]


def grpo_step(model: Any, reference: Any, optimizer: Any, prompts: list[list[int]], reward: Reward,
              settings: GrpoSettings, *, max_new_tokens: int, pad_id: int, eos_id: int, seed: int) -> dict[str, float]:
    """Sample, reward, normalise within groups, one optimizer step; the step's statistics."""
    import torch

    started = time.monotonic()
    samples = sample_groups(model, prompts, settings.group_size, max_new_tokens, settings.temperature,
                            pad_id, eos_id, seed)
    sampled = time.monotonic()
    rewards = torch.tensor([reward(s) for s in samples], dtype=torch.float).view(len(prompts), settings.group_size)
    advantages = group_advantages(rewards).view(-1)
    stats = backward_grpo(model, reference, samples, advantages, settings, pad_id)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return {**stats, "reward": float(rewards.mean()),
            "sample_seconds": sampled - started, "update_seconds": time.monotonic() - sampled,
            "informative_groups": float((rewards.std(dim=1) > 0).float().mean()) if settings.group_size > 1 else 0.0,
            "completion_tokens": sum(len(s.completion_ids) for s in samples) / len(samples)}


def plan_reward(tokenizer: Any, mazes: pd.DataFrame) -> Reward:
    """1 when the grader calls the sample's plan correct (the plan alone decides), else 0."""
    from .plans import grade_one

    rows = mazes.to_dict("records")

    def reward(sample: Sample) -> float:
        row = rows[sample.prompt]
        text = tokenizer.decode(list(sample.completion_ids), skip_special_tokens=True)
        verdict = grade_one(text, row["problem"], row["width"], row["height"],
                            "stop" if sample.finished else "length")["verdict"]
        return float(verdict == "correct")

    return reward


def reference_model(model: Any) -> Any:
    """A frozen copy of the starting model: the KL term's anchor."""
    reference = copy.deepcopy(model)
    reference.eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    return reference


def longest_completion(mazes: pd.DataFrame) -> int:
    """Tokens of the longest reference trace + plan + end among ``mazes``, with 16 to spare
    (as training's evaluation allows): a swapped trace is some other training maze's trace."""
    words = (mazes["reference_trace"] + " " + mazes["answer"]).str.split().str.len()
    return int(words.max()) + 1 + 16


def post_train(model: Any, tokenizer: Any, mazes: pd.DataFrame, eval_mazes: pd.DataFrame, settings: GrpoSettings,
               *, seed: int) -> pd.DataFrame:
    """GRPO on ``mazes`` (training-distribution problem rows), in place; the learning curve:
    one row per evaluation, the step statistics averaged since the last one."""
    import torch

    from .training import evaluate_plans

    reference = reference_model(model)
    prompts = [tokenizer.encode(p) for p in mazes["problem"]]
    max_new = longest_completion(mazes)
    reward = plan_reward(tokenizer, mazes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, betas=(0.9, 0.98), weight_decay=0.0)
    draw = torch.Generator().manual_seed(seed)
    curve, window, started = [], [], time.monotonic()

    def evaluation(step: int) -> None:
        eval_max = longest_completion(eval_mazes) if len(eval_mazes) else 0
        scores = evaluate_plans(model, tokenizer, eval_mazes, eval_max) if len(eval_mazes) else {}
        means = pd.DataFrame(window).mean().to_dict() if window else {}
        row = {"step": step, **means, "seconds": time.monotonic() - started, **scores}
        curve.append(row)
        window.clear()
        log.info("GRPO step %d: %s", step, {k: round(v, 4) for k, v in row.items() if k != "step"})

    model.train()
    evaluation(0)
    for step in range(settings.steps):
        for group in optimizer.param_groups:
            group["lr"] = settings.lr * min(1.0, (step + 1) / max(1, settings.warmup_steps))
        picked = torch.randint(len(prompts), (settings.mazes_per_step,), generator=draw).tolist()
        batch_reward = _reindexed(reward, picked)
        window.append(grpo_step(model, reference, optimizer, [prompts[i] for i in picked], batch_reward, settings,
                                max_new_tokens=max_new, pad_id=tokenizer.pad_token_id,
                                eos_id=tokenizer.eos_token_id, seed=int(torch.randint(2**31 - 1, (1,), generator=draw))))
        if (step + 1) % settings.eval_every == 0 or step + 1 == settings.steps:
            evaluation(step + 1)
    return pd.DataFrame(curve)


def _reindexed(reward: Reward, picked: list[int]) -> Reward:
    """The reward of a step's samples, whose ``prompt`` indexes the step's draw ``picked``."""
    def step_reward(sample: Sample) -> float:
        return reward(Sample(picked[sample.prompt], sample.prompt_ids, sample.completion_ids, sample.finished))

    return step_reward


def grpo_job(model_dir: str, mazes_path: str, validation_path: str, out_model: str, out_curve: str, *,
             settings: dict[str, Any], seed: int, threads: int, config: dict[str, Any]) -> None:
    """Post-train the checkpoint in ``model_dir``; write the new checkpoint and its curve."""
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    from ..provenance import provenance
    from ..tables import read_table, write_table
    from .plans import VERSION
    from .training import save_checkpoint

    grpo = GrpoSettings(**settings)
    if threads:
        torch.set_num_threads(threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device)
    validation = read_table(validation_path).head(grpo.eval_mazes)
    log.info("GRPO of %s: %d steps of %d mazes x %d samples, on %s", model_dir, grpo.steps,
             grpo.mazes_per_step, grpo.group_size, device)
    curve = post_train(model, tokenizer, read_table(mazes_path), validation, grpo, seed=seed)
    save_checkpoint(model, tokenizer, out_model)
    write_table(curve, out_curve, provenance(config, seed=seed, grpo=asdict(grpo), start=model_dir,
                                             grader_version=VERSION))
