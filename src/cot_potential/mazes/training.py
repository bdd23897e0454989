"""Training a small Llama-style decoder from scratch on maze sequences (CPU or GPU, torch).

The loss covers the completion only (trace + plan + ``end``), never the query: the model
learns to answer, not to write mazes. A batch may run as several micro-batches of similar
length (the same gradient, less padding). Batches are drawn with a seeded generator, uniformly or
(``group_by_length``) grouped by length, which pads less but learned less per step on mazes
(README, "Mazes"); the learning rate warms up linearly and decays with a cosine. Every ``eval_every`` steps the model plans
``eval_mazes`` held-out mazes of the training distribution greedily and the validator
grades them, which gives the learning curve. The checkpoint is an HF folder (weights,
config, tokenizer, generation config) that vLLM loads.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Architecture:
    """``mazes.model`` of the config: a Llama decoder (RoPE, RMSNorm, SwiGLU)."""

    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    intermediate_size: int = 512
    max_length: int = 1024
    # Size of each attention head; None: hidden_size / heads. Set apart from the width, so a
    # narrow model can have several heads of a size vLLM-CPU's attention kernels support.
    head_dim: int | None = None
    # Standard deviation of the initial weights: HF's 0.02 suits wide models; from it the
    # width-64 maze models learned far slower than from 0.05 (README, "Mazes").
    init_std: float = 0.02

    def llama_config(self, tokenizer: Any) -> Any:
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=self.hidden_size, intermediate_size=self.intermediate_size,
            num_hidden_layers=self.layers, num_attention_heads=self.heads, num_key_value_heads=self.heads,
            head_dim=self.head_dim or self.hidden_size // self.heads,
            max_position_embeddings=self.max_length, tie_word_embeddings=True,
            initializer_range=self.init_std,
            bos_token_id=tokenizer.convert_tokens_to_ids("query"), eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )


@dataclass(frozen=True)
class Schedule:
    """``mazes.training`` of the config."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 50
    weight_decay: float = 0.01
    eval_every: int = 250
    eval_mazes: int = 32
    group_by_length: bool = False
    micro_batches: int = 1


def encode(tokenizer: Any, prompts: list[str], completions: list[str]) -> list[tuple[list[int], int]]:
    """Token ids of prompt + completion, and the prompt's length (the loss starts after it)."""
    out = []
    for prompt, completion in zip(prompts, completions):
        p = tokenizer.encode(prompt)
        c = tokenizer.encode(completion)
        out.append((p + c, len(p)))
    return out


def collate(examples: list[tuple[list[int], int]], pad_id: int) -> dict[str, Any]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 outside completions)."""
    import torch

    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (seq, n_prompt) in enumerate(examples):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
        labels[row, n_prompt: len(seq)] = torch.tensor(seq[n_prompt:])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def length_sorted_parts(examples: list[tuple[list[int], int]], parts: int) -> list[list[tuple[list[int], int]]]:
    """The batch sorted by length and cut into ``parts`` runs of near-equal size (fewer if the
    batch is smaller): each run pads only to its own longest sequence."""
    ordered = sorted(examples, key=lambda example: len(example[0]))
    parts = max(1, min(parts, len(ordered)))
    return [ordered[i * len(ordered) // parts:(i + 1) * len(ordered) // parts] for i in range(parts)]


def backward_batch(model: Any, examples: list[tuple[list[int], int]], pad_id: int, micro_batches: int = 1) -> float:
    """Backpropagate the batch's loss (mean over its completion tokens) and return it.

    The batch runs as ``micro_batches`` forward/backward passes of similar-length sequences,
    each token's loss divided by the whole batch's token count: the gradient is that of the
    whole batch at once, with less padding (on 5x5 mazes, 4 parts: 1.4x faster per step, bench/maze_training).
    """
    import torch.nn.functional as F

    parts = [collate(part, pad_id) for part in length_sorted_parts(examples, micro_batches)]
    tokens = sum(int((part["labels"][:, 1:] != -100).sum()) for part in parts)
    total = 0.0
    for part in parts:
        part = {k: v.to(model.device) for k, v in part.items()}
        # No attention mask: padding is on the right, so under the causal mask no real token
        # sees a pad, and the fused causal attention kernel runs instead of a masked one.
        logits = model(input_ids=part["input_ids"]).logits
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), part["labels"][:, 1:].reshape(-1),
                               ignore_index=-100, reduction="sum") / tokens
        loss.backward()
        total += loss.item()
    return total


def uniform_batches(n: int, batch_size: int, generator: Any) -> Iterator[list[int]]:
    """Endless batches of ``batch_size`` indices drawn uniformly (with replacement) from ``n``."""
    import torch

    while True:
        yield torch.randint(n, (batch_size,), generator=generator).tolist()


def length_grouped_batches(lengths: list[int], batch_size: int, generator: Any,
                           pool_batches: int = 16) -> Iterator[list[int]]:
    """Endless batches of indices: a random pool of ``pool_batches`` batches, sorted by length,
    cut into batches that are served in random order.

    Every batch is still a uniform draw in aggregate (each pool is), but its sequences have
    similar lengths, so a batch is mostly real tokens: on 5x5 mazes 98% instead of 71%.
    """
    import torch

    while True:
        pool = torch.randint(len(lengths), (batch_size * pool_batches,), generator=generator).tolist()
        pool.sort(key=lambda i: lengths[i])
        for b in torch.randperm(pool_batches, generator=generator).tolist():
            yield pool[b * batch_size:(b + 1) * batch_size]


def learning_rate(step: int, schedule: Schedule) -> float:
    if step < schedule.warmup_steps:
        return schedule.lr * (step + 1) / schedule.warmup_steps
    progress = (step - schedule.warmup_steps) / max(1, schedule.steps - schedule.warmup_steps)
    return schedule.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def greedy_completions(model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int,
                       batch_size: int = 64) -> list[str]:
    """Greedy continuations (left-padded batches), decoded without the ``end`` token."""
    import torch

    texts = []
    tokenizer.padding_side = "left"
    model.eval()
    with torch.no_grad():
        for i in range(0, len(prompts), batch_size):
            batch = tokenizer(prompts[i:i + batch_size], return_tensors="pt", padding=True).to(model.device)
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            new = out[:, batch["input_ids"].shape[1]:]
            texts += tokenizer.batch_decode(new, skip_special_tokens=True)
    tokenizer.padding_side = "right"
    model.train()
    return texts


def evaluate_plans(model: Any, tokenizer: Any, mazes: pd.DataFrame, max_new_tokens: int) -> dict[str, float]:
    """Plan accuracy and trace validity of greedy outputs on ``mazes`` (problem-table rows)."""
    from .validate import check_plan, check_trace, parse_query, split_output

    texts = greedy_completions(model, tokenizer, list(mazes["problem"]), max_new_tokens)
    correct = valid = 0
    for text, row in zip(texts, mazes.to_dict("records")):
        grid = parse_query(row["problem"], row["width"], row["height"])
        output = split_output(text)
        correct += check_plan(grid, output.plan, output.plan_status).correct
        valid += check_trace(grid, output.events, output.reasoning_error).valid
    return {"plan_accuracy": correct / len(texts), "trace_validity": valid / len(texts)}


def train(sequences: pd.DataFrame, eval_mazes: pd.DataFrame, tokenizer: Any, architecture: Architecture,
          schedule: Schedule, *, seed: int, threads: int | None = None) -> tuple[Any, pd.DataFrame]:
    """Train a fresh model; returns it and its learning curve (one row per evaluation)."""
    import torch
    from transformers import LlamaForCausalLM

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = LlamaForCausalLM(architecture.llama_config(tokenizer)).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    examples = encode(tokenizer, list(sequences["prompt"]), list(sequences["completion"]))
    longest = max(len(ids) for ids, _ in examples)
    if longest > architecture.max_length:
        raise ValueError(f"a training sequence has {longest} tokens > mazes.model.max_length "
                         f"{architecture.max_length}")
    max_new = max(len(ids) - n for ids, n in examples) + 16
    log.info("training %.2fM parameters on %d sequences (longest %d tokens), %d steps of %d, on %s",
             n_params / 1e6, len(examples), longest, schedule.steps, schedule.batch_size, device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": schedule.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=schedule.lr,
                                  betas=(0.9, 0.98))
    generator = torch.Generator().manual_seed(seed)
    curve, losses, started = [], [], time.monotonic()

    def checkpoint(step: int) -> None:
        scores = evaluate_plans(model, tokenizer, eval_mazes, max_new) if len(eval_mazes) else {}
        row = {"step": step, "loss": float(sum(losses) / len(losses)) if losses else float("nan"),
               "seconds": time.monotonic() - started, **scores}
        curve.append(row)
        losses.clear()
        log.info("step %d: %s", step, {k: round(v, 4) for k, v in row.items() if k != "step"})

    if schedule.group_by_length:
        batches = length_grouped_batches([len(ids) for ids, _ in examples], schedule.batch_size, generator)
    else:
        batches = uniform_batches(len(examples), schedule.batch_size, generator)
    model.train()
    checkpoint(0)
    for step in range(schedule.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, schedule)
        losses.append(backward_batch(model, [examples[i] for i in next(batches)], tokenizer.pad_token_id,
                                     schedule.micro_batches))
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if (step + 1) % schedule.eval_every == 0 or step + 1 == schedule.steps:
            checkpoint(step + 1)
    return model, pd.DataFrame(curve)


def save_checkpoint(model: Any, tokenizer: Any, out_dir: str | Path) -> Path:
    """An HF folder vLLM loads: weights (safetensors), config, tokenizer, generation config."""
    import shutil

    from transformers import GenerationConfig

    out = Path(out_dir)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.to("cpu").save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                     bos_token_id=model.config.bos_token_id).save_pretrained(tmp)
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    return out


def settings_record(architecture: Architecture, schedule: Schedule) -> dict[str, Any]:
    return {"architecture": asdict(architecture), "schedule": asdict(schedule)}


def train_job(sequences_path: str, validation_path: str, tokenizer_dir: str, out_model: str, out_curve: str,
              *, architecture: dict[str, Any], schedule: dict[str, Any], seed: int, threads: int,
              config: dict[str, Any]) -> None:
    from transformers import AutoTokenizer

    from ..provenance import provenance
    from ..tables import read_table, write_table

    arch, sched = Architecture(**architecture), Schedule(**schedule)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    validation = read_table(validation_path).head(sched.eval_mazes)
    model, curve = train(read_table(sequences_path), validation, tokenizer, arch, sched, seed=seed,
                         threads=threads)
    save_checkpoint(model, tokenizer, out_model)
    write_table(curve, out_curve, provenance(config, seed=seed, **settings_record(arch, sched),
                                             n_parameters=sum(p.numel() for p in model.parameters())))
