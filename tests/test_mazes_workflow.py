"""The maze experiment in the workflow: the DAG of the shipped configs (dry runs)."""

from conftest import REPO, snakemake

MAZE_RULES = ("maze_tokenizer", "maze_training_data", "maze_train", "maze_evaluation",
              "maze_potential_curves", "maze_report")
PIPELINE = ("problems", "model_card", "generate_traces", "cut_prefixes", "rollout", "grade", "potentials", "report")


def planned(tmp_path, config):
    proc = snakemake(tmp_path, "-n", "--quiet", "rules", configfile=REPO / config)
    return proc.stdout + proc.stderr


def test_the_maze_config_plans_training_evaluation_and_the_pipelines_own_stages(tmp_path):
    out = planned(tmp_path, "config/mazes.yaml")
    for rule in MAZE_RULES + PIPELINE:
        assert rule in out, rule
    assert "convert_gguf" not in out


def test_the_default_config_plans_no_maze_rule(tmp_path):
    out = planned(tmp_path, "config/config.yaml")
    assert not any(rule in out for rule in MAZE_RULES)


def planned_job(tmp_path, section, threads, target, rule):
    """The dry-run entry of ``rule`` for ``target`` under config/mazes.yaml with
    ``section.threads`` (``mazes.training`` or ``engine``) set to ``threads``."""
    import yaml

    config = yaml.safe_load((REPO / "config/mazes.yaml").read_text())
    node = config
    for key in section.split("."):
        node = node[key]
    node["threads"] = threads
    path = tmp_path / "mazes.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path, "-n", "--cores", "8", target, configfile=path)
    return (proc.stdout + proc.stderr).split(f"rule {rule}:")[1].split("\n\n")[0]


def test_a_training_job_takes_the_configured_threads(tmp_path):
    assert "threads: 3" in planned_job(tmp_path, "mazes.training", 3, "results/mazes/models/correct", "maze_train")


def test_an_engine_job_takes_the_configured_engine_threads(tmp_path):
    block = planned_job(tmp_path, "engine", 3, "results/traces/maze-correct/maze-test.parquet", "generate_traces")
    assert "threads: 3" in block
