"""The hostile corpus (tests/hostile/) through the extractor and the real grader workers:
every case gets a verdict within the configured bound, nothing it contains is ever run."""

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, load_config
from cot_potential.answers import extract_answer
from cot_potential.grading import VERDICTS, GraderPool, GradingSettings, grade_texts
from cot_potential.potentials import compute_potentials
from cot_potential.tables import read_table, write_table
from hostile.corpus import MB, load_corpus

STOP = ("<|im_end|>",)
KINDS = {"nested_power", "huge", "unbalanced", "invalid_utf8", "control", "script", "jinja", "python",
         "latex_bomb", "sanity"}


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


@pytest.fixture(scope="module")
def settings():
    """The tiny config's grading settings, with a 1 s bound so the dozens of cases that must
    time out keep CI short; the bound asserted below is whatever is configured here."""
    grading = load_config("tests/config/tiny.yaml")["grading"]
    return GradingSettings.from_config({**grading, "timeout_s": 1.0, "workers": 2})


@pytest.fixture(scope="module")
def graded(corpus, settings, tmp_path_factory):
    """The whole corpus graded once, in a scratch working directory (where a payload that
    ran would leave its canary file)."""
    workdir = tmp_path_factory.mktemp("hostile")
    started = time.monotonic()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        with GraderPool(settings) as pool:
            table = grade_texts((c.text for c in corpus), [c.gold for c in corpus],
                                ["stop"] * len(corpus), pool, stop_strings=STOP)
    return table, time.monotonic() - started, workdir


def test_the_corpus_has_every_kind_of_hostility(corpus):
    kinds = Counter(c.kind for c in corpus)
    assert len(corpus) >= 200 and set(kinds) == KINDS, kinds
    assert len({c.id for c in corpus}) == len(corpus)
    assert max(len(c.text) for c in corpus) >= MB
    assert max(c.text.count("\\boxed{") for c in corpus) >= 5000
    texts = "".join(c.text for c in corpus if len(c.text) < MB)
    for needle in ("\x00", "\ufffd", "\udcff", "<script>", "{{", "__import__('os')", "9^{9^{9^{9^9}}}",
                   "10^{10^{10^{10}}}"):
        assert needle in texts, needle


def test_every_case_gets_its_verdict_within_the_bound(corpus, graded, settings):
    table, elapsed, _ = graded
    assert len(table) == len(corpus)
    assert set(table["verdict"]) <= set(VERDICTS)
    wrong = [(c.id, v, c.expect) for c, v in zip(corpus, table["verdict"]) if v not in c.expect]
    assert not wrong, wrong
    verdicts = Counter(table["verdict"])
    assert verdicts["timeout"] >= 5, "the nested powers should hit the bound"  # ... and be counted
    assert verdicts["correct"] >= 100, "the right answer survives the noise around it"
    # Bounded: each verification is killed at the bound, so even if every case timed out
    # the corpus could not take longer than this (worker start-ups are the slack).
    bound = settings.timeout_s * len(corpus) / settings.workers + 120
    assert elapsed < bound, (elapsed, bound)


def test_timeouts_are_counted_in_potentials_not_crashes(corpus, graded, tmp_path):
    table, _, _ = graded
    grades = table.assign(prefix_id=[c.kind for c in corpus], sample=range(len(corpus)),
                          finish_reason="stop", n_tokens=1)
    # The grades of hostile text are an ordinary table: written and read back intact.
    write_table(grades, tmp_path / "grades.parquet", {"test": True})
    grades = read_table(tmp_path / "grades.parquet")
    assert grades["verdict"].tolist() == table["verdict"].tolist()
    prefixes = pd.DataFrame({"prefix_id": sorted(set(grades["prefix_id"]))})
    pot = compute_potentials(prefixes, grades)
    assert pot["n_timeout"].sum() == (table["verdict"] == "timeout").sum()
    assert (pot["n_correct"] + pot["n_incorrect"] + pot["n_no_answer"] + pot["n_timeout"] == pot["n_samples"]).all()
    assert pot.set_index("prefix_id").loc["nested_power", "n_timeout"] > 0


def test_no_payload_left_a_canary(graded):
    _, _, workdir = graded
    assert not list(workdir.iterdir()), list(workdir.iterdir())


# Loaded into every grading worker (as sitecustomize): any code compiled from text that holds
# a payload marker, any process started, any canary file opened is written to the audit log,
# and the worker dies on the spot.
AUDIT_HOOK = """
import os, sys
MARKERS = ("cot_canary", "__import__", "PWNED")
FORBIDDEN = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen", "os.fork")

def _hook(event, args):
    text = repr(args)
    if event in FORBIDDEN or (event in ("compile", "exec", "open") and any(m in text for m in MARKERS)):
        with open(os.environ["COT_AUDIT_LOG"], "a") as log:
            log.write(f"{event} {text[:300]}\\n")
        os._exit(3)

sys.addaudithook(_hook)
"""


@pytest.fixture
def audited_workers(tmp_path, monkeypatch):
    """Grading workers started from here run under the audit hook; yields the audit log."""
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(AUDIT_HOOK)
    log = tmp_path / "audit.log"
    log.touch()
    monkeypatch.setenv("PYTHONPATH", f"{hook_dir}:{REPO / 'src'}")
    monkeypatch.setenv("COT_AUDIT_LOG", str(log))
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return log, workdir


def test_no_text_is_ever_evaluated_as_code(corpus, settings, audited_workers):
    """Every payload goes to the real verifier twice: as the extracted answer, and as the whole
    raw text (the worst a careless extractor could hand on)."""
    log, workdir = audited_workers
    pairs = []
    for case in corpus:
        if case.payload:
            answer = extract_answer(case.text, stop_strings=STOP).answer
            pairs += [(case.gold, case.text)] + ([(case.gold, answer)] if answer else [])
    with GraderPool(settings) as pool:
        verdicts = pool.verify(pairs)
    assert log.read_text() == "", log.read_text()[:2000]
    assert set(verdicts) <= set(VERDICTS)
    assert not list(workdir.iterdir())


def test_the_audit_hook_would_see_an_evaluation(settings, audited_workers):
    """The check above can fail: sympy's parse_expr, which math-verify uses for plain
    expressions, compiles its input; a worker that evaluated a payload is caught."""
    log, _ = audited_workers
    probe = "from sympy import parse_expr; parse_expr(\"__import__('os')\")"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=120)
    assert proc.returncode == 3 and log.read_text().startswith("compile"), (proc.stderr[-2000:], log.read_text())


def test_huge_texts_extract_in_linear_time(corpus):
    """No timing: a megabyte extracts, and the answer handed on is bounded in size."""
    for case in corpus:
        if case.kind == "huge":
            result = extract_answer(case.text, stop_strings=STOP)
            assert result.answer is None or len(result.answer) <= 2000


def test_the_generator_runs_standalone():
    proc = subprocess.run([sys.executable, str(Path(__file__).parent / "hostile" / "corpus.py")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and int(proc.stdout.split()[0]) >= 200, proc.stderr
