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


def test_a_training_job_takes_the_configured_threads(tmp_path):
    import yaml

    config = yaml.safe_load((REPO / "config/mazes.yaml").read_text())
    config["mazes"]["training"]["threads"] = 3
    path = tmp_path / "mazes.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path, "-n", "--cores", "8", "results/mazes/models/correct", configfile=path)
    block = (proc.stdout + proc.stderr).split("rule maze_train:")[1].split("\n\n")[0]
    assert "threads: 3" in block



def test_an_engine_job_takes_the_configured_engine_threads(tmp_path):
    import yaml

    config = yaml.safe_load((REPO / "config/mazes.yaml").read_text())
    config["engine"]["threads"] = 3
    path = tmp_path / "mazes.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path, "-n", "--cores", "8", "results/traces/maze-correct/maze-test.parquet",
                     configfile=path)
    block = (proc.stdout + proc.stderr).split("rule generate_traces:")[1].split("\n\n")[0]
    assert "threads: 3" in block
