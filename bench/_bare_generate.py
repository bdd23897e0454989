"""One engine of the workflow, replayed bare: ``vllm.LLM`` and its ``generate`` calls, nothing else.

    python bench/_bare_generate.py RECORD OUT

RECORD is an engine record (``cot_potential.engine_record``: what one engine of a workflow
run was asked). This process places itself, sets vLLM's environment and builds its arguments
with the engine's own functions (``engine.prepare_process``, ``engine.llm_arguments``,
``engine.vllm_inputs``), starts ``vllm.LLM`` with the recorded weights, settings, seed and
threads, and calls ``LLM.generate`` on exactly the recorded requests, call by call: no
Snakemake, no tables, no grading. OUT (JSON) gets the seconds to a ready engine (imports
included), the seconds of each call, the tokens, and whether each call's completions are
identical to the workflow's (same digest).
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cot_potential.engine import (EngineSettings, Request, context_window, llm_arguments,  # noqa: E402
                                  prepare_process, vllm_inputs)
from cot_potential.engine_record import completions_digest  # noqa: E402


def main() -> None:
    record, out = json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]).resolve()
    os.chdir(record["cwd"])  # where the engine ran: its weights may be a relative path
    settings = EngineSettings(**record["settings"])
    prepare_process(settings, record["threads"])
    from vllm import LLM

    llm = LLM(**llm_arguments(record["weights"], record["revision"], settings, record["seed"]))
    ready = time.perf_counter()
    calls = []
    for call in record["calls"]:
        requests = [Request(ids, n, budget) for ids, n, budget in call["requests"]]
        began = time.perf_counter()
        prompts, params = vllm_inputs(requests, call["sampling"], context_window(llm))
        outputs = llm.generate(prompts, params, use_tqdm=False)
        seconds = time.perf_counter() - began
        groups = [[(c.text, c.token_ids, c.finish_reason) for c in o.outputs] for o in outputs]
        calls.append({"seconds": seconds, "tokens": sum(len(c.token_ids) for o in outputs for c in o.outputs),
                      "identical": completions_digest(groups) == call["digest"]})
    out.write_text(json.dumps({"engine_s": ready - STARTED, "calls": calls}))


if __name__ == "__main__":
    main()
