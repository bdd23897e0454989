"""A bare ``vllm.LLM.generate`` on exactly the requests of one rollout shard (for bench/rollout).

    python bench/_bare_generate.py WORKDIR SHARD SEED OUT

Same weights, engine settings, seed, request order, ``n`` and budgets as the rollout job, and
nothing else: no Snakemake, no sample store, no tables beyond one output file to compare.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cot_potential.engine import EngineSettings, engine_environment  # noqa: E402
from cot_potential.rollouts import request_order  # noqa: E402
from cot_potential.shards import shard_rows  # noqa: E402

MODEL, DATASET = "smollm2-oneshot", "arith"


def main() -> None:
    workdir, shard, seed, out = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    started = time.perf_counter()
    os.chdir(workdir)
    import pandas as pd
    import yaml

    config = yaml.safe_load(Path("config.yaml").read_text())
    card = json.loads(Path(f"results/models/{MODEL}/card.json").read_text())
    prefixes = shard_rows(pd.read_parquet(f"results/prefixes/{MODEL}/{DATASET}.parquet"), shard,
                          config["rollouts"]["shards"])
    ordered = request_order(prefixes)
    settings = EngineSettings.from_config(card["engine"])
    os.environ.update(engine_environment(settings, threads=2))
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    kwargs = dict(model=card["weights"], revision=card.get("revision"), seed=seed, dtype=settings.dtype,
                  enforce_eager=settings.enforce_eager, enable_prefix_caching=settings.enable_prefix_caching,
                  gpu_memory_utilization=settings.gpu_memory_utilization,
                  tensor_parallel_size=settings.tensor_parallel_size)
    if settings.max_model_len:
        kwargs["max_model_len"] = settings.max_model_len
    if settings.max_num_seqs:
        kwargs["max_num_seqs"] = settings.max_num_seqs
    llm = LLM(**kwargs)
    max_len = llm.llm_engine.model_config.max_model_len
    ready = time.perf_counter()
    n = config["rollouts"]["n"]
    prompts = [TokensPrompt(prompt_token_ids=list(ids)) for ids in ordered["prompt_token_ids"]]
    params = [SamplingParams(n=n, max_tokens=max(1, min(int(b), max_len - len(ids))), **card["sampling"])
              for ids, b in zip(ordered["prompt_token_ids"], ordered["max_tokens"])]
    outputs = llm.generate(prompts, params, use_tqdm=True)
    done = time.perf_counter()
    texts = [[c.text for c in o.outputs] for o in outputs]
    tokens = sum(len(c.token_ids) for o in outputs for c in o.outputs)
    Path(out).write_text(json.dumps({"texts": texts, "tokens": tokens, "engine_s": ready - started,
                                     "generate_s": done - ready}))


if __name__ == "__main__":
    main()
