"""The ``cot-potential`` command: potential curves of your own traces in one command.

    cot-potential curves TRACES.jsonl --model NAME_OR_PATH [--field trace=solution] [--n 8] [--cuts 6] [--out DIR]
    cot-potential plan CONFIG [CONFIG ...]
    cot-potential report DIR

``curves`` checks every record first (fields present, each gold answer parsable by
math-verify, the model known): bad input gets one line naming the record and writes nothing.
It then writes ``DIR/config.yaml`` (a study config for the imported traces), runs the workflow
in ``DIR`` and prints where the curves, tables and report are. See docs/your-own-traces.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
BASE_CONFIG = REPO / "config" / "config.yaml"
FIELD_KEYS = ("id", "problem", "answer", "trace")
DEFAULT_FIELDS = {"problem": "problem", "answer": "answer", "trace": "trace"}
MODEL, PROMPT = "model", "boxed"
SYSTEM = ("You are a helpful math assistant. Solve the problem step by step and write the final answer "
          "as \\boxed{answer}.")


class InputError(ValueError):
    """Bad input to the command: printed as one line, nothing written."""


def parse_fields(pairs: Sequence[str]) -> dict[str, str]:
    """``["trace=solution", "id=unique_id"]`` -> the record field of each role."""
    fields = dict(DEFAULT_FIELDS)
    for pair in pairs:
        key, sep, name = pair.partition("=")
        if not sep or key not in FIELD_KEYS or not name:
            raise InputError(f"--field {pair!r}: expected ROLE=FIELD with ROLE one of {', '.join(FIELD_KEYS)}")
        fields[key] = name
    return fields


def read_records(path: Path, fields: dict[str, str]) -> list[dict[str, str]]:
    """Every record's fields as text; the first bad record raises, naming ``file:line``."""
    from .datasets import DatasetError, read_text_fields

    try:
        table = read_text_fields(path, fields)
    except DatasetError as err:
        raise InputError(str(err)) from None
    if table.empty:
        raise InputError(f"{path}: no records")
    records = table.to_dict("records")
    if "id" in fields:
        seen: dict[str, int] = {}
        for i, record in enumerate(records):
            if record["id"] in seen:
                raise InputError(f"{path}: record {i + 1}: duplicate id {record['id']!r} (as record {seen[record['id']] + 1})")
            seen[record["id"]] = i
    return records


def check_answers(path: Path, records: list[dict[str, str]]) -> None:
    """Each gold answer as the grader reads it (``\\boxed{answer}`` parsed by math-verify)."""
    import logging

    from math_verify import parse

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    for i, record in enumerate(records):
        parsed = parse("\\boxed{" + record["answer"] + "}")
        if all(isinstance(x, str) for x in parsed):  # nothing, or only the raw string: no math in it
            name = f"id {record['id']!r}" if "id" in record else f"record {i + 1}"
            raise InputError(f"{path}: {name}: math-verify cannot parse the answer {record['answer']!r}")


def resolve_model(model: str, base: dict[str, Any]) -> dict[str, Any]:
    """The ``weights`` of the model entry (and ``weights:`` entries to build): an embedded
    weights name of the base config, a local folder, or a hub id whose tokenizer loads."""
    embedded = base.get("weights", {})
    if model in embedded:
        return {"weights": model, "build": {model: embedded[model]}}
    folder = Path(model).expanduser()
    if folder.is_dir():
        if not any((folder / f).is_file() for f in ("config.json", "tokenizer_config.json", "tokenizer.json")):
            raise InputError(f"--model {model}: the folder has no config.json or tokenizer files")
        return {"weights": str(folder.resolve()), "build": {}}
    if model.count("/") == 1 and not folder.exists():
        try:
            from transformers import AutoTokenizer

            AutoTokenizer.from_pretrained(model)
        except Exception as err:  # noqa: BLE001 - any failure means: not a usable hub model
            raise InputError(f"--model {model}: unknown model (not on the hub or not reachable: "
                             f"{str(err).splitlines()[0][:160]})") from None
        return {"weights": model, "build": {}}
    raise InputError(f"--model {model}: unknown model: not an embedded weights name ({', '.join(sorted(embedded))}), "
                     "not a local folder, not a hub id (org/name)")


def cut_fractions(cuts: int) -> list[float]:
    return [round(i / (cuts - 1), 4) for i in range(cuts)]


def trace_budget(weights: str | None, texts: Sequence[str], answer_tokens: int) -> int | None:
    """L_max that holds the longest trace plus ``answer_tokens`` (in steps of 64), if the
    tokenizer can be loaded now (embedded weights are only built by the workflow)."""
    if weights is None:
        return None
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(weights)
    longest = max(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    return -(-(longest + answer_tokens) // 64) * 64


def engine_entry(args: argparse.Namespace) -> dict[str, Any]:
    if args.backend == "vllm":
        return {}
    if not args.base_url:
        raise InputError("--backend openai needs --base-url (the server's root URL, e.g. http://gpu-node:8000)")
    entry = {"backend": "openai", "base_url": args.base_url, "threads": 1}
    if args.served_model:
        entry["served_model"] = args.served_model
    if args.api_key_env:
        entry["api_key_env"] = args.api_key_env
    return entry


def study_config(args: argparse.Namespace, path: Path, fields: dict[str, str], model: dict[str, Any],
                 max_tokens: int, base: dict[str, Any]) -> dict[str, Any]:
    """The study config of the imported traces: dataset ``problems`` (the JSONL), trace set
    ``traces`` (its trace field), one model, the laptop engine and grading of config/config.yaml."""
    names = {k: fields[k] for k in ("id", "problem", "answer") if k in fields}
    return {
        "seed": args.seed,
        "weights": model["build"],
        "prompts": {PROMPT: {"version": 1, "system": args.system, "user": "{problem}"}},
        "models": {MODEL: {"weights": model["weights"], "prompt": PROMPT, "engine": engine_entry(args),
                           "sampling": {"temperature": args.temperature, "top_p": args.top_p,
                                        "max_tokens": max_tokens}}},
        "datasets": {"problems": {"loader": "jsonl", "path": str(path), "fields": names,
                                  "metadata": [fields["trace"]]}},
        "traces": {"imported": {"traces": {"dataset": "problems", "field": fields["trace"]}}},
        "potentials": [{"model": MODEL, "datasets": ["traces"]}],
        "prefixes": {"mode": "fraction", "fractions": cut_fractions(args.cuts)},
        "rollouts": {"n": args.n, **({"tokens_per_shard": args.tokens_per_shard} if args.tokens_per_shard else {})},
        "transfer": {"pairs": []},
        "optimize": {"enabled": False},
        "engine": base.get("engine", {}),
        "grading": base.get("grading", {}),
        # The report's dynamics section needs a power curve: a small one at this N.
        "dynamics": {"power": {"sizes": [0.2, 0.4], "ns": [args.n], "n_curves": 50}},
        "report": {"max_curves": args.max_curves},
    }


def prepare(args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Check everything and build the config, writing nothing (every failure is an InputError)."""
    from .config import ConfigError, validate

    path = Path(args.traces).resolve()
    fields = parse_fields(args.field)
    if args.cuts < 2 or args.n < 1:
        raise InputError("--cuts must be at least 2 (the start and the end of each trace), --n at least 1")
    records = read_records(path, fields)
    check_answers(path, records)
    base = yaml.safe_load(BASE_CONFIG.read_text())
    model = resolve_model(args.model, base)
    local = (str(Path(args.resources) / "models" / args.model) if args.resources and model["build"]
             else None if model["build"] else model["weights"])
    max_tokens = args.max_tokens or trace_budget(local, [r["trace"] for r in records], args.answer_tokens) or 1024
    config = study_config(args, path, fields, model, max_tokens, base)
    try:
        validate(yaml.safe_load(yaml.safe_dump(config)))
    except ConfigError as err:
        raise InputError(f"the study config is invalid: {str(err).splitlines()[0]}") from None
    return config, records


def run_workflow(workdir: Path, targets: Sequence[str], cores: int) -> None:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
               str(workdir), "--configfile", str(workdir / "config.yaml"), "--cores", str(cores), *targets]
    if subprocess.run(command).returncode != 0:
        raise SystemExit(f"cot-potential: the workflow failed in {workdir} (logs under {workdir / 'logs'}); "
                         "run the same command again to resume")


def finish(workdir: Path) -> None:
    """Export the curves and say where everything is."""
    import pandas as pd

    from .curves import export_curves

    potentials = workdir / "results" / "potentials" / MODEL / "traces.parquet"
    traces = workdir / "results" / "traces" / MODEL / "traces.parquet"
    exported = export_curves(pd.read_parquet(potentials), pd.read_parquet(traces), workdir / "curves")
    print(f"curves:  {exported['csv']}\n         {exported['json']}")
    print(f"tables:  {potentials}\n         {workdir / 'results' / 'tables'}")
    print(f"report:  {workdir / 'results' / 'report' / 'index.html'}")


def curves_command(args: argparse.Namespace) -> int:
    config, records = prepare(args)
    workdir = Path(args.out).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if args.resources and not (workdir / "resources").exists():
        (workdir / "resources").symlink_to(Path(args.resources).resolve(), target_is_directory=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    print(f"{len(records)} traces of {args.traces}; study config: {workdir / 'config.yaml'}", flush=True)
    run_workflow(workdir, [f"results/potentials/{MODEL}/traces.parquet", "results/report/index.html"], args.cores)
    finish(workdir)
    return 0


def report_command(args: argparse.Namespace) -> int:
    workdir = Path(args.dir).resolve()
    if not (workdir / "config.yaml").is_file():
        raise InputError(f"{workdir}: no config.yaml (a folder written by `cot-potential curves`)")
    run_workflow(workdir, ["results/report/index.html"], args.cores)
    finish(workdir)
    return 0


def plan_command(args: argparse.Namespace) -> int:
    from . import plan

    return plan.main(["--configfile", *args.config, "--workdir", args.workdir])


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="cot-potential", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="command", required=True)
    c = sub.add_parser("curves", help="potential curves of the traces in a JSONL file",
                       description="Potential curves of your own traces: one JSON object per line with a problem, "
                                   "its gold answer and a worked solution (the trace).")
    c.add_argument("traces", help="JSONL file, one trace per line")
    c.add_argument("--model", required=True,
                   help="the model that continues the traces: an embedded weights name (smollm2-135m-instruct), "
                        "a local model folder, or a hub id (org/name); with --backend openai it supplies the tokenizer")
    c.add_argument("--field", action="append", default=[], metavar="ROLE=FIELD",
                   help="which record field holds each role: problem (default 'problem'), answer ('answer'), "
                        "trace ('trace'), id (default: numbered in file order); repeat for several roles")
    c.add_argument("--n", type=int, default=8, help="samples per cut: the potential is the share of N "
                                                    "continuations that end in the gold answer (default 8)")
    c.add_argument("--cuts", type=int, default=6, help="cuts per trace, evenly spaced from 0%% to 100%% of its "
                                                       "tokens (default 6)")
    c.add_argument("--backend", choices=("vllm", "openai"), default="vllm",
                   help="vllm: load the model in-process (default); openai: an OpenAI-compatible completions "
                        "endpoint (docs/server.md)")
    c.add_argument("--base-url", help="--backend openai: the server's root URL, e.g. http://gpu-node:8000")
    c.add_argument("--served-model", help="--backend openai: the endpoint's name of the model (default: --model)")
    c.add_argument("--api-key-env", help="--backend openai: NAME of the environment variable holding the API key")
    c.add_argument("--out", default="cot-potential-out", help="working folder: config, results, report "
                                                              "(default ./cot-potential-out; a rerun resumes)")
    c.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default 0.7)")
    c.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (default 0.95)")
    c.add_argument("--max-tokens", type=int, help="L_max, the assistant turn's token budget (default: the longest "
                                                  "trace + --answer-tokens where the tokenizer is at hand, else 1024)")
    c.add_argument("--answer-tokens", type=int, default=256, help="tokens past the longest trace for the "
                                                                  "final answer (default 256)")
    c.add_argument("--system", default=SYSTEM, help="system prompt (default: solve step by step, answer in \\boxed{})")
    c.add_argument("--seed", type=int, default=0, help="the study's seed (default 0)")
    c.add_argument("--tokens-per-shard", type=float, help="planned generated tokens per rollout job (default "
                                                          "rollouts.tokens_per_shard: one job for most trace sets)")
    c.add_argument("--max-curves", type=int, default=24, help="curves drawn in the report (default 24)")
    c.add_argument("--cores", type=int, default=2, help="cores Snakemake may use (default 2)")
    c.add_argument("--resources", help="an existing resources/ folder with built embedded weights, linked "
                                       "into --out instead of building them (about a minute for SmolLM2)")
    c.set_defaults(run=curves_command)
    p = sub.add_parser("plan", help="what a config will cost (tokens, GPU hours; for API models, money)",
                       description="The cost planner (python -m cot_potential.plan) on a config.")
    p.add_argument("config", nargs="+", help="config file(s), later ones override earlier ones")
    p.add_argument("--workdir", default=".", help="a folder with an earlier run to measure from (default .)")
    p.set_defaults(run=plan_command)
    r = sub.add_parser("report", help="rebuild the report and curve exports of a `curves` folder",
                       description="Rebuild the report and the curve exports of a folder written by `curves`.")
    r.add_argument("dir", help="the --out folder of `cot-potential curves`")
    r.add_argument("--cores", type=int, default=2, help="cores Snakemake may use (default 2)")
    r.set_defaults(run=report_command)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except InputError as err:
        print(f"cot-potential: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
