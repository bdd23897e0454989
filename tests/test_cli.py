"""The cot-potential command without running the workflow: input checks (one line, nothing
written), the study config it builds, and the curve exports and plot."""

import json
import re

import pandas as pd
import pytest
import yaml

import cot_potential
from cot_potential import cli
from cot_potential.curves import curve_objects, export_curves

RECORDS = [
    {"uid": "a", "question": "What is 2+3?", "gold": "5", "cot": "2 + 3 = 5. So \\boxed{5}."},
    {"uid": "b", "question": "Half of 1?", "gold": "\\frac{1}{2}", "cot": "One half: \\boxed{\\frac{1}{2}}."},
]
FIELDS = ["--field", "id=uid", "--field", "problem=question", "--field", "answer=gold", "--field", "trace=cot"]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def run_curves(tmp_path, records, *extra, capsys):
    traces = write_jsonl(tmp_path / "traces.jsonl", records)
    out = tmp_path / "out"
    code = cli.main(["curves", str(traces), "--model", "smollm2-135m-instruct", "--out", str(out), *FIELDS, *extra])
    return code, capsys.readouterr().err.strip().splitlines(), out


@pytest.mark.parametrize(("records", "extra", "message"), [
    ([RECORDS[0], {k: v for k, v in RECORDS[1].items() if k != "gold"}], (), r"traces.jsonl:2: missing field 'gold'"),
    ([RECORDS[0], {**RECORDS[1], "gold": "}{"}], (), r"id 'b': math-verify cannot parse the answer '}{'"),
    ([RECORDS[0], {**RECORDS[1], "uid": "a"}], (), r"record 2: duplicate id 'a'"),
    (RECORDS, ("--model", "no-such-model"), r"--model no-such-model: unknown model"),
    (RECORDS, ("--backend", "openai"), r"--backend openai needs --base-url"),
    (RECORDS, ("--field", "solution=cot"), r"--field 'solution=cot': expected ROLE=FIELD"),
])
def test_bad_input_is_one_line_naming_the_record_and_writes_nothing(tmp_path, capsys, records, extra, message):
    code, err, out = run_curves(tmp_path, records, *extra, capsys=capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith("cot-potential: error: ")
    assert re.search(message, err[0]), err[0]
    assert not out.exists()


def test_the_study_config_imports_the_traces_and_validates(tmp_path):
    traces = write_jsonl(tmp_path / "traces.jsonl", RECORDS)
    args = cli.parser().parse_args(["curves", str(traces), "--model", "smollm2-135m-instruct", "--n", "5",
                                    "--cuts", "3", "--max-tokens", "300", *FIELDS])
    config, records = cli.prepare(args)
    assert len(records) == 2
    assert config["datasets"]["problems"] == {"loader": "jsonl", "path": str(traces.resolve()), "metadata": ["cot"],
                                              "fields": {"id": "uid", "problem": "question", "answer": "gold"}}
    assert config["traces"]["imported"]["traces"] == {"dataset": "problems", "field": "cot"}
    assert config["prefixes"]["fractions"] == [0.0, 0.5, 1.0] and config["rollouts"]["n"] == 5
    assert config["models"]["model"]["sampling"]["max_tokens"] == 300
    assert "smollm2-135m-instruct" in config["weights"]
    yaml.safe_dump(config)


def test_an_openai_backend_model_gets_its_endpoint(tmp_path):
    traces = write_jsonl(tmp_path / "traces.jsonl", RECORDS)
    args = cli.parser().parse_args(["curves", str(traces), "--model", "smollm2-135m-instruct", "--max-tokens", "64",
                                    "--backend", "openai", "--base-url", "http://node:8000", "--api-key-env", "K",
                                    *FIELDS])
    engine = cli.prepare(args)[0]["models"]["model"]["engine"]
    assert engine == {"backend": "openai", "base_url": "http://node:8000", "threads": 1, "api_key_env": "K"}


def potentials():
    rows = []
    for trace, correct in (("p1", True), ("p2", False)):
        for i, f in enumerate((0.0, 0.5, 1.0)):
            rows.append({"problem_id": trace, "trace_id": 0, "cut_index": i, "cut_fraction": f, "cut_token": 4 * i,
                         "char_offset": 5 * i, "n_samples": 8, "n_correct": 2 * i, "potential": i / 4,
                         "ci_low": 0.0, "ci_high": 0.9, "trace_correct": correct})
    return pd.DataFrame(rows)


def test_exports_hold_one_object_per_trace_with_its_segments(tmp_path):
    traces = pd.DataFrame({"problem_id": ["p1", "p2"], "trace_id": [0, 0], "text": ["abcdefghijkl", "0123456789"]})
    paths = export_curves(potentials(), traces, tmp_path)
    table = pd.read_csv(paths["csv"])
    assert len(table) == 6 and list(table["potential"][:3]) == [0.0, 0.25, 0.5]
    objects = json.loads(paths["json"].read_text())
    assert objects == curve_objects(potentials(), traces)
    first = objects[0]
    assert first["cuts"] == [0.0, 0.5, 1.0] and first["intervals"][1] == [0.0, 0.9]
    assert first["segments"] == ["", "abcde", "fghij", "kl"] and "".join(first["segments"]) == "abcdefghijkl"


def test_plot_curve_draws_on_the_given_axes_and_returns_them():
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    assert cot_potential.plot_curve(potentials(), ax=ax) is ax
    assert len(ax.lines) == 2 and ax.get_xlabel() == "fraction of the trace given"
    assert cot_potential.plot_curve(potentials()[potentials()["problem_id"] == "p1"]).lines
    plt.close("all")


def test_figures_come_in_every_configured_format(tmp_path):
    from cot_potential.report import figures_job

    table = tmp_path / "pot.parquet"
    potentials().to_parquet(table)
    figures_job(str(table), str(tmp_path / "fig"), max_curves=1, formats=["png", "svg", "pdf"])
    names = sorted(p.name for p in (tmp_path / "fig").iterdir())
    assert names == sorted(f"{stem}.{ext}" for stem in ("curve-0", "grid", "mean") for ext in ("png", "pdf", "svg"))
    assert (tmp_path / "fig" / "grid.svg").read_text().lstrip().startswith("<?xml")
