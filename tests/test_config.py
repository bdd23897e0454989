import copy

import pytest
import yaml

from conftest import REPO, load_config, shared_file, snakemake
from cot_potential.config import ConfigError, validate


@pytest.fixture
def default():
    return load_config()


def test_shipped_configs_are_valid():
    for name in ("config/config.yaml", "tests/config/tiny.yaml"):
        validate(load_config(name))


def mutate(config, path, value):
    config = copy.deepcopy(config)
    node = config
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return config


WRONG = [
    (("rollouts", "n"), 0, "minimum"),
    (("rollouts", "n"), "many", "is not of type"),
    (("rollouts", "samples"), 4, "unknown key under rollouts"),
    (("models", "smollm2-oneshot", "sampling", "temprature"), 0.7, "temprature"),
    (("models", "smollm2-oneshot", "sampling", "top_p"), 1.5, "maximum"),
    (("models", "smollm2-oneshot", "prompt"), "boxed-oneshoot", "unknown prompt 'boxed-oneshoot'"),
    (("models", "smollm2-oneshot", "weigths"), "x", "weigths"),
    (("datasets", "arith", "loader"), "csv", "is not one of"),
    (("datasets", "arith", "n_problems"), KeyError, "needs the key 'n_problems'"),
    (("datasets", "bad name"), {"loader": "synthetic", "n_problems": 3}, "does not match"),
    (("potentials", 0, "model"), "smollm2-oneshto", "did you mean 'smollm2-oneshot'"),
    (("potentials", 0, "datasets"), ["aritm"], "unknown dataset or trace set 'aritm'"),
    (("prefixes", "fractions"), [0.0, 1.2], "maximum"),
    (("grading", "timeout_s"), 0, "exclusiveMinimum"),
    (("engine", "cpu_kvcache"), 4, "cpu_kvcache"),
    (("prompts", "boxed-oneshot", "user"), "no placeholder", "does not match"),
]


@pytest.mark.parametrize(("path", "value", "message"), WRONG, ids=[".".join(map(str, w[0])) for w in WRONG])
def test_wrong_configs_are_rejected_naming_the_problem(default, path, value, message):
    with pytest.raises(ConfigError, match=message):
        validate(mutate(default, path, value))


def test_unknown_top_level_key(default):
    with pytest.raises(ConfigError, match="rolouts"):
        validate({**default, "rolouts": {"n": 4}})


# A schema mistake is one short paragraph of ours: key and value, what is allowed there and,
# for a misspelt key or choice, the nearest valid one (not the whole schema and config).
PARAGRAPHS = [
    (("rolouts",), {"n": 4}, ["config key rolouts: unknown key at the top level (value {'n': 4})",
                              "allowed at the top level: datasets,", "did you mean 'rollouts'?"]),
    (("prefixes", "mode"), "fractions", ["config key prefixes.mode: 'fractions' is not one of",
                                         "allowed: one of fraction, stride, boundary", "did you mean 'fraction'?"]),
    (("rollouts", "n"), 0, ["config key rollouts.n: 0 is less than the minimum of 1",
                            "allowed: an integer >= 1 and <= 4096 (N: completions per prefix"]),
    (("models", "smollm2-oneshot", "sampling", "temprature"), 0.7,
     ["config key models.smollm2-oneshot.sampling.temprature: unknown key under models.smollm2-oneshot.sampling "
      "(value 0.7)", "allowed under models.smollm2-oneshot.sampling: frequency_penalty, max_tokens,",
      "did you mean 'temperature'?"]),
    (("datasets", "arith", "loader"), KeyError, ["config key datasets.arith: 'loader' is a required property",
                                                "allowed: the keys loader, and any of"]),
]


@pytest.mark.parametrize(("path", "value", "lines"), PARAGRAPHS, ids=[".".join(p[0]) for p in PARAGRAPHS])
def test_a_schema_error_is_a_short_paragraph_naming_key_value_allowed_and_nearest(default, path, value, lines):
    with pytest.raises(ConfigError) as err:
        validate(mutate(default, path, value))
    text = str(err.value).splitlines()
    assert len(text) <= 6, text
    for line, expected in zip(text, lines):
        assert expected in line, (expected, text)
    assert "did you mean" in str(err.value) or not any("did you mean" in x for x in lines)
    assert "workflow/schemas/config.schema.yaml" in text[-1]


def test_every_wrong_config_is_reported_in_at_most_six_lines(default):
    for path, value, _ in WRONG:
        with pytest.raises(ConfigError) as err:
            validate(mutate(default, path, value))
        assert len(str(err.value).splitlines()) <= 6, str(err.value)


def test_a_mistyped_top_level_key_prints_a_few_lines_through_snakemake(tmp_path):
    """`snakemake -n --config bogus_key=1` printed 3,069 lines (schema and config) when the
    Snakefile called snakemake.utils.validate itself; now the whole output is a dozen lines."""
    from concurrent.futures import ThreadPoolExecutor

    def dry_run(setting):
        workdir = tmp_path / setting.split("=")[0]
        workdir.mkdir()
        (workdir / "config").symlink_to(REPO / "config")
        return snakemake(workdir, "-n", "--config", setting, check=False, timeout=300)

    with ThreadPoolExecutor(2) as pool:
        bogus, typo = pool.map(dry_run, ["bogus_key=1", "sed=3"])
    for proc, key, hint in ((bogus, "bogus_key", None), (typo, "sed", "did you mean 'seed'?")):
        out = (proc.stdout + proc.stderr).splitlines()
        assert proc.returncode != 0
        assert len(out) <= 12, "\n".join(out)
        assert any(f"config key {key}: unknown key at the top level (value 3)" in line
                   or f"config key {key}: unknown key at the top level (value 1)" in line for line in out), out
        assert any("allowed at the top level: datasets, dynamics, engine" in line for line in out), out
        assert hint is None or any(hint in line for line in out), out


# ------------------------------------------------------------------ the schema itself

SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
# Objects whose keys are free by design: chat template variables are the template's own.
FREE_FORM = {"config.models.<name>.chat_template_kwargs"}
RANGE_KEYWORDS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "enum")


def _resolve(node):
    while "$ref" in node:
        target = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _types(node):
    kind = node.get("type")
    return set(kind) if isinstance(kind, list) else {kind}


def schema_keys(node=SCHEMA, path="config"):
    """Every key the schema allows, with its (resolved) schema: properties, the value schema of
    named entries (``<name>``) and the items of arrays of objects (``[]``)."""
    node = _resolve(node)
    yield path, node
    if "object" in _types(node):
        for key, sub in node.get("properties", {}).items():
            yield from schema_keys(sub, f"{path}.{key}")
        if isinstance(node.get("additionalProperties"), dict):
            yield from schema_keys(node["additionalProperties"], f"{path}.<name>")
    if "array" in _types(node) and "object" in _types(_resolve(node.get("items", {}))):
        yield from schema_keys(node["items"], f"{path}[]")


def test_schema_walk_sees_the_whole_schema():
    keys = dict(schema_keys())
    assert len(keys) > 100
    for path in ("config.rollouts.n", "config.models.<name>.sampling.max_tokens",
                 "config.transfer.pairs[].fractions", "config.datasets.<name>.hub.revision"):
        assert path in keys


@pytest.mark.parametrize(("path", "node"), list(schema_keys()), ids=[p for p, _ in schema_keys()])
def test_every_schema_key_has_type_range_and_description(path, node):
    assert node.get("type") is not None or "enum" in node, f"{path} has no type"
    assert node.get("description", "").strip(), f"{path} has no description"
    kinds = _types(node)
    if kinds & {"integer", "number"}:
        assert any(k in node for k in RANGE_KEYWORDS), f"{path} is a number without a range"
    if "object" in kinds and path not in FREE_FORM:
        # Unknown keys are rejected: either a closed set of properties, or named entries
        # whose values are themselves checked.
        extra = node.get("additionalProperties", True)
        assert extra is False or isinstance(extra, dict), f"{path} accepts unknown keys"
    if "array" in kinds:
        assert "items" in node, f"{path} is an array without an item schema"


def test_unknown_keys_are_rejected_at_every_level(default):
    """For each closed object of the schema that the default config has, an extra key fails
    and the message names it."""
    checked = 0
    for path, node in schema_keys():
        if node.get("additionalProperties") is not False or "<name>" in path or "[]" in path:
            continue
        parts = path.split(".")[1:]
        target = default
        for part in parts:
            target = target.get(part) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            continue
        wrong = mutate(default, tuple(parts) + ("bogus_key",), 1)
        with pytest.raises(ConfigError, match="bogus_key"):
            validate(wrong)
        checked += 1
    assert checked >= 8


# ------------------------------------------------- misspelt names fail before any job starts

GSM8K_SPEC = {"loader": "jsonl", "fields": {"problem": "question"}, "answer_pattern": "####\\s*(.+)$"}

MISSPELT = [
    # (mutation, the key the message must name, a fragment of the message)
    (("models", "smollm2-oneshot", "weights"), "smollm2-135m-instruc",
     "models.smollm2-oneshot.weights", "did you mean 'smollm2-135m-instruct'"),
    (("transfer", "pairs", 0, "target"), "smollm2-dirct",
     "transfer.pairs[0].target", "did you mean 'smollm2-direct'"),
    (("transfer", "pairs", 0, "source"), "smollm2-onesht",
     "transfer.pairs[0].source", "did you mean 'smollm2-oneshot'"),
    (("transfer", "pairs", 0, "datasets"), ["arth"], "transfer.pairs[0].datasets", "unknown dataset 'arth'"),
    (("datasets", "gsm"), {**GSM8K_SPEC, "path": "no/such/file.jsonl"}, "datasets.gsm.path", "no file at"),
    (("datasets", "gsm"), {**GSM8K_SPEC, "fields": {"problem": "questoin"}},
     "datasets.gsm.fields.problem", "did you mean 'question'"),
    (("datasets", "gsm"), {**GSM8K_SPEC, "fields": {"problem": "question", "id": "uid"}},
     "datasets.gsm.fields.id", "'uid' is not in the records"),
    (("seed",), -1, "config key seed", "minimum"),
    (("engine", "cpu_kvcache_gib"), 0, "config key engine.cpu_kvcache_gib", "minimum"),
    # vLLM-CPU reads VLLM_CPU_KVCACHE_SPACE with int(): 1.5 would crash the engine in a job.
    (("engine", "cpu_kvcache_gib"), 1.5, "config key engine.cpu_kvcache_gib", "is not of type 'integer'"),
    (("prefixes", "mode"), "fractions", "config key prefixes.mode", "is not one of"),
    (("datasets", "arith", "sample_seed"), -3, "config key datasets.arith.sample_seed", "minimum"),
    (("report", "max_curves"), 2.5, "config key report.max_curves", "is not of type 'integer'"),
]


def _with_gsm_path(config, value):
    if isinstance(value, dict) and value.get("loader") == "jsonl" and "path" not in value:
        value = {**value, "path": str(shared_file("gsm8k_test.jsonl"))}
    return value


@pytest.mark.parametrize(("path", "value", "key", "message"), MISSPELT,
                         ids=[".".join(map(str, m[0])) + f"={m[1]!r}"[:30] for m in MISSPELT])
def test_misspelt_names_and_fields_fail_naming_the_key(default, path, value, key, message):
    with pytest.raises(ConfigError) as err:
        validate(mutate(default, path, _with_gsm_path(default, value)))
    assert key in str(err.value) and message in str(err.value), str(err.value)


def test_a_dozen_wrong_configs_each_name_their_key(default):
    """Together with WRONG and MISSPELT above: every message names the offending key."""
    named = 0
    for path, value, _ in WRONG:
        with pytest.raises(ConfigError) as err:
            validate(mutate(default, path, value))
        text = str(err.value)
        owner = [str(p) for p in path if not isinstance(p, int)]
        assert any(part in text for part in owner[-2:]), (path, text)
        named += 1
    assert named + len(MISSPELT) >= 24


def test_weights_may_be_a_hub_id_or_an_existing_folder(default, tmp_path):
    validate(mutate(default, ("models", "smollm2-oneshot", "weights"), "HuggingFaceTB/SmolLM2-135M-Instruct"))
    validate(mutate(default, ("models", "smollm2-oneshot", "weights"), str(tmp_path)))


# Through the real workflow: `snakemake -n` stops at the config, names the key, runs nothing.
DRY_RUN_WRONG = [
    (("rollouts", "n"), 0, "config key rollouts.n"),
    (("models", "smollm2-oneshot", "sampling", "temprature"), 0.7, "temprature"),
    (("models", "smollm2-oneshot", "weights"), "smollm2-135m-instruc", "models.smollm2-oneshot.weights"),
    (("potentials", 0, "model"), "smollm2-oneshto", "potentials[0].model"),
    (("datasets", "gsm"), {**GSM8K_SPEC, "fields": {"problem": "questoin"}}, "datasets.gsm.fields.problem"),
]


def test_snakemake_dry_run_fails_fast_naming_the_key(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    tiny = load_config("tests/config/tiny.yaml")

    def dry_run(i):
        path, value, key = DRY_RUN_WRONG[i]
        workdir = tmp_path / f"wrong-{i}"
        workdir.mkdir()
        configfile = workdir / "config.yaml"
        configfile.write_text(yaml.safe_dump(mutate(tiny, path, _with_gsm_path(tiny, value))))
        proc = snakemake(workdir, "-n", configfile=configfile, check=False, timeout=300)
        return key, workdir, proc

    with ThreadPoolExecutor(2) as pool:
        for key, workdir, proc in pool.map(dry_run, range(len(DRY_RUN_WRONG))):
            out = proc.stdout + proc.stderr
            assert proc.returncode != 0, out
            assert key in out, out[-3000:]
            assert "Job stats" not in out and "rule " not in out, "a job was planned"
            assert not (workdir / "results").exists() and not (workdir / "logs").exists()


def test_a_models_engine_override_has_the_engine_keys_without_defaults():
    engine, override = SCHEMA["$defs"]["engine"]["properties"], SCHEMA["$defs"]["engine_override"]["properties"]
    # conda_env picks the env file of the engine rules, one for the whole run.
    engine = {k: v for k, v in engine.items() if k != "conda_env"}
    assert set(override) == set(engine)
    for key, node in engine.items():
        rules = {k: v for k, v in node.items() if k not in ("default", "description")}
        assert {k: v for k, v in override[key].items() if k != "description"} == rules, key
        assert "default" not in override[key], key


def test_a_models_engine_override_keeps_the_global_engine_settings():
    from cot_potential.models import model_spec

    config = load_config("config/paper.yaml")
    validate(config)
    # paper.yaml: global dtype bfloat16; llama-3.1-70b-instruct overrides tensor_parallel_size only.
    engine = model_spec(config, "llama-3.1-70b-instruct").engine
    assert engine["tensor_parallel_size"] == 4
    assert engine["dtype"] == config["engine"]["dtype"] == "bfloat16"
    assert engine["threads"] == config["engine"]["threads"]


@pytest.mark.parametrize("name", ["config/config.yaml", "config/paper.yaml", "config/showcase.yaml",
                                  "config/mazes.yaml", "tests/config/tiny.yaml"])
def test_every_engine_setting_of_the_schema_reaches_the_engine(name):
    """Each model's merged engine settings build the engine's settings (a key the schema
    allows but EngineSettings lacks would fail every engine job, not the config check)."""
    from cot_potential.engine import EngineSettings
    from cot_potential.models import model_spec

    config = validate(load_config(name))
    for model in config["models"]:
        EngineSettings.from_config(model_spec(config, model).engine)
    assert set(SCHEMA["$defs"]["engine"]["properties"]) <= set(EngineSettings.__dataclass_fields__)


def test_every_schema_description_parses_as_one_string():
    """An unquoted comma in a YAML flow mapping would cut a description into stray keys."""
    stray = [path for path, node in schema_keys() if any(value is None and key != "default"
                                                         for key, value in node.items())]
    assert stray == []


def test_the_paper_transfer_pairs_fit_their_targets_context():
    validate(load_config("config/paper.yaml"))


def test_a_transfer_prefix_that_cannot_fit_fails_in_one_paragraph_naming_pair_dataset_and_lengths(default):
    """Default pair: prompt 512 + 0.6 x 128 (source L_max) = 77 + budget 600 > max_model_len 1024."""
    config = copy.deepcopy(default)
    config["transfer"]["pairs"][0]["budget"] = 600
    with pytest.raises(ConfigError) as err:
        validate(config)
    message = str(err.value)
    assert "\n" not in message
    for part in ("oneshot-to-direct", "smollm2-oneshot -> smollm2-direct", "arith", "512", "77", "600",
                 "1,189", "1,024", "budget to <= 435"):
        assert part in message, part
    config["transfer"]["pairs"][0]["budget"] = 435
    validate(config)


def test_a_transfer_target_needs_a_known_context(default):
    config = copy.deepcopy(default)
    config["engine"]["max_model_len"] = None
    with pytest.raises(ConfigError, match="context length is unknown"):
        validate(config)
    config["models"]["smollm2-direct"]["native_context"] = 1024
    validate(config)
    config["models"]["smollm2-direct"]["engine"] = {"max_model_len": 2048}
    with pytest.raises(ConfigError, match="exceeds its native context of 1,024"):
        validate(config)
