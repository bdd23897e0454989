"""Turning a problem into the exact token ids a model continues from.

Prompts are rendered with the model's own chat template to *text* and then encoded without
adding special tokens (the template already wrote them). With transformers 5,
``apply_chat_template(tokenize=True)`` returns a BatchEncoding, and ids re-derived from
decoded text can shift at the boundary, so everything downstream works on these ids.
"""

from __future__ import annotations

import hashlib
from typing import Any

PROBLEM_FIELD = "{problem}"


def render_user(template: str, problem: str) -> str:
    # str.replace, not str.format: LaTeX problems are full of braces.
    if PROBLEM_FIELD not in template:
        raise ValueError(f"prompt template must contain {PROBLEM_FIELD}: {template!r}")
    return template.replace(PROBLEM_FIELD, problem)


def build_messages(prompt: dict[str, Any], problem: str) -> list[dict[str, str]]:
    """System text, few-shot example turns, then the problem as the last user turn."""
    user = prompt.get("user", PROBLEM_FIELD)
    messages = []
    if prompt.get("system"):
        messages.append({"role": "system", "content": prompt["system"]})
    for example in prompt.get("examples", []):
        messages.append({"role": "user", "content": render_user(user, example["problem"])})
        messages.append({"role": "assistant", "content": example["solution"]})
    messages.append({"role": "user", "content": render_user(user, problem)})
    return messages


def render_prompt_text(tokenizer: Any, messages: list[dict[str, str]], template_kwargs: dict[str, Any]) -> str:
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, **template_kwargs
    )


def encode_text(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def prompt_token_ids(tokenizer: Any, prompt: dict[str, Any], problem: str,
                     template_kwargs: dict[str, Any]) -> list[int]:
    """The ids a model continues from. ``template: raw`` prompts (models trained from scratch,
    e.g. on mazes) skip the chat template: the rendered user text is the whole prompt."""
    if prompt.get("template", "chat") == "raw":
        return list(tokenizer.encode(render_user(prompt.get("user", PROBLEM_FIELD), problem)))
    return encode_text(tokenizer, render_prompt_text(tokenizer, build_messages(prompt, problem), template_kwargs))


def chat_template_sha256(tokenizer: Any) -> str:
    template = tokenizer.chat_template or ""
    if isinstance(template, dict):  # named templates
        template = repr(sorted(template.items()))
    return hashlib.sha256(template.encode()).hexdigest()


def stop_token_ids(tokenizer: Any, generation_eos: Any = None) -> list[int]:
    """End-of-turn ids: the tokenizer's eos plus the generation config's eos ids."""
    ids = set()
    for value in (tokenizer.eos_token_id, generation_eos):
        if value is None:
            continue
        ids.update(value if isinstance(value, (list, tuple)) else [value])
    return sorted(int(i) for i in ids)
