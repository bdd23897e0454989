"""Reproducibility: what identifies a model's outputs, where seeds come from, what every table
records about how it was made, and which jobs rerun when a version changes."""

import copy

import pandas as pd

from conftest import load_config
from cot_potential.engine import engine_settings
from cot_potential.ids import sub_seed
from cot_potential.models import model_spec
from cot_potential.provenance import provenance
from cot_potential.tables import provenance_path, read_json, write_table


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
    other = identity(config, "smollm2-zeroshot")
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
