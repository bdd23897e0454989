"""The HTML report in a real browser (headless Debian Chromium through Selenium): model text
full of markup, template and Python payloads is shown as text and never runs; every figure
loads; the console stays clean. Also a screenshot of the tiny run's report (a test artifact),
and the tiny run's `snakemake --report report.zip` with the project's page inside it.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them).
"""

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, load_config, snakemake
from cot_potential.answers import extract_answer, unicode_text
from cot_potential.potentials import compute_potentials
from cot_potential.provenance import provenance
from cot_potential.report import Run, figures_job, report_job, standalone_page
from cot_potential.tables import write_json, write_table
from hostile.corpus import load_corpus

TITLE = "cot-potential report"
ARTIFACTS = Path(os.environ.get("COT_TEST_ARTIFACTS", REPO / ".ci-artifacts"))
# Elements no report of ours contains: if one shows up, a payload became markup.
FOREIGN_ELEMENTS = "script, iframe, object, embed, svg, math, form, input, video, audio, base, link, meta[http-equiv], title ~ title"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        message = "needs Debian chromium + chromium-driver: apt-get install -y chromium chromium-driver"
        if os.environ.get("CI") or os.environ.get("COT_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-extensions", "--no-first-run",
                "--disable-component-update", "--window-size=1280,1600",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()


def open_report(driver, path: Path) -> list[dict]:
    """Load the page, wait for every image, return the console entries of this page."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop entries of earlier pages
    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, 60).until(lambda d: d.execute_script(
        "return document.readyState === 'complete' && [...document.images].every(i => i.complete)"))
    return driver.get_log("browser")


def assert_safe_and_whole(driver, console: list[dict], n_figures: int) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text
    assert driver.title == TITLE
    assert driver.execute_script(f"return document.querySelectorAll('{FOREIGN_ELEMENTS}').length") == 0
    handlers = driver.execute_script(
        "return [...document.querySelectorAll('*')].flatMap(e => [...e.attributes].map(a => a.name))"
        ".filter(n => n.startsWith('on'))")
    assert handlers == []
    widths = driver.execute_script("return [...document.images].map(i => [i.getAttribute('src'), i.naturalWidth])")
    assert len(widths) == n_figures and all(w > 0 for _, w in widths), widths
    errors = [e for e in console if e["level"] == "SEVERE"]
    assert not errors, errors


def visible_text(driver) -> str:
    driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    return " ".join(driver.execute_script("return document.body.innerText").split())


# ------------------------------------------------------------------ the hostile report


def hostile_tables(out: Path) -> tuple[list, Path, list[str]]:
    """A (model, dataset) run whose problems, gold answers, traces and sampled answers are the
    corpus' payloads; returns the report_job arguments, the config and the payloads."""
    corpus = load_corpus()
    payloads = [c for c in corpus if c.payload and not c.id.endswith(("-boxed", "-before", "-after"))]
    answers = [extract_answer(c.text).answer for c in corpus if c.payload and c.id.endswith("-boxed")]
    noise = [unicode_text(c.text) for c in corpus if c.kind in ("control", "invalid_utf8", "unbalanced")]
    huge = next(c.text for c in corpus if c.id == "huge-1mb-of-scripts")
    ids = ["hostile-0", "p$\\frac$<b>{{ id }}</b>", "hostile-2", "hostile-3"]
    problems, traces, prefixes, grades = [], [], [], []
    for i, pid in enumerate(ids):
        mine = payloads[i::len(ids)]
        text = "\n".join(unicode_text(c.text) for c in mine) + "\n" + "\n".join(noise[i::len(ids)])
        if i == 0:
            text += "\n" + huge
        problems.append({"problem_id": pid, "problem": " ".join(c.text for c in mine[:8]), "answer": mine[0].text})
        traces.append({"problem_id": pid, "trace_id": 0, "text": text, "answer": answers[i], "verdict": "timeout",
                       "correct": i % 2 == 0})
        for cut, offset in enumerate((0, len(text) // 3, 2 * len(text) // 3, len(text))):
            prefix_id = f"{pid}#{cut}"
            prefixes.append({"prefix_id": prefix_id, "problem_id": pid, "trace_id": 0, "cut_index": cut,
                             "cut_fraction": cut / 3, "nominal_fraction": cut / 3, "cut_token": cut,
                             "char_offset": offset, "trace_correct": i % 2 == 0})
            for sample in range(8):
                answer = answers[(i * 31 + cut * 8 + sample) % len(answers)]
                grades.append({"prefix_id": prefix_id, "sample": sample, "answer": answer, "answer_key": answer,
                               "extraction": "boxed", "verdict": ("incorrect", "timeout", "correct")[sample % 3],
                               "finish_reason": "stop", "n_tokens": 10})
    config = load_config("tests/config/tiny.yaml")
    config["prompts"]["boxed-oneshot"]["system"] = payloads[0].text + " {{ 7*7 }}"
    names = {"problems": out / "problems.parquet", "traces": out / "traces.parquet",
             "potentials": out / "potentials.parquet", "card": out / "card.json"}
    write_table(pd.DataFrame(problems), names["problems"])
    write_table(pd.DataFrame(traces), names["traces"])
    potentials = compute_potentials(pd.DataFrame(prefixes), pd.DataFrame(grades))
    write_table(potentials, names["potentials"], provenance(config, note=payloads[1].text))
    write_json(names["card"], {"prompt_name": payloads[2].text, "prompt": {"version": payloads[3].text},
                               "identity": payloads[4].text, "chat_template_sha256": payloads[5].text,
                               "sampling": {"temperature": payloads[6].text}, "max_tokens": payloads[7].text})
    figures = out / "report" / "figures" / "m" / "d"
    figures_job(str(names["potentials"]), str(figures), max_curves=len(ids))
    args = ([Run("m", "d")], [str(names["potentials"])], [str(names["traces"])], [str(names["problems"])],
            [str(names["card"])], [str(figures)], str(out / "report" / "index.html"))
    return args, config, [c.text for c in payloads]


def test_hostile_model_text_is_shown_as_text_and_never_runs(browser, tmp_path):
    args, config, payloads = hostile_tables(tmp_path)
    report_job(*args, config=config, max_curves=4)
    html = Path(args[-1])
    assert "<script>" not in html.read_text(encoding="utf-8")
    console = open_report(browser, html)
    assert_safe_and_whole(browser, console, n_figures=2 + 4)
    text = visible_text(browser)
    missing = [p for p in payloads if " ".join(p.split()) not in text]
    assert not missing, missing[:5]
    assert "{{ 7*7 }}" in text and "PWNED" in text  # the payload text itself is on the page
    assert browser.title == TITLE  # still, after every payload was rendered


def test_the_standalone_page_is_the_hostile_report_whole_in_one_file(browser, tmp_path):
    """The page `snakemake --report` registers: every figure embedded, still safe, nothing
    read from beside it (it is opened from another folder)."""
    args, config, payloads = hostile_tables(tmp_path)
    report_job(*args, config=config, max_curves=4)
    alone = tmp_path / "elsewhere" / "page.html"
    standalone_page(args[-1], str(alone))
    assert 'src="figures/' not in alone.read_text(encoding="utf-8")
    console = open_report(browser, alone)
    assert_safe_and_whole(browser, console, n_figures=2 + 4)
    assert all(src.startswith("data:image/png;base64,") for src in browser.execute_script(
        "return [...document.images].map(i => i.getAttribute('src'))"))


def test_the_standalone_page_embeds_linked_files_and_leaves_anchors_and_urls(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.png").write_bytes(b"\x89PNG fake")
    (tmp_path / "table.csv").write_text("x,y\n1,2\n")
    page = tmp_path / "report" / "index.html"
    page.parent.mkdir()
    page.write_text('<img src="../figures/a.png"><a href="#top">top</a><a href="https://example.org/a&amp;b">x</a>'
                    '<a href="../table.csv">t</a>')
    standalone_page(str(page), str(tmp_path / "out.html"))
    out = (tmp_path / "out.html").read_text()
    assert 'src="data:image/png;base64,iVBORyBmYWtl"' in out
    assert 'href="data:text/csv;base64,eCx5CjEsMgo=" download="table.csv"' in out
    assert 'href="#top"' in out and 'href="https://example.org/a&amp;b"' in out
    page.write_text('<img src="figures/missing.png">')
    with pytest.raises(FileNotFoundError, match="missing.png"):
        standalone_page(str(page), str(tmp_path / "out.html"))


def test_the_check_catches_a_payload_that_runs(browser, tmp_path):
    """The checks above can fail: the same page without escaping runs the payload."""
    page = tmp_path / "unsafe.html"
    page.write_text(f"<!doctype html><title>{TITLE}</title><p>"
                    "<img src=x onerror=\"document.title='PWNED'\"><script>document.title='PWNED'</script>")
    console = open_report(browser, page)
    assert browser.title == "PWNED"
    with pytest.raises(AssertionError):
        assert_safe_and_whole(browser, console, n_figures=1)


# ------------------------------------------------------------------ the tiny run's report


@pytest.mark.e2e
def test_tiny_report_loads_cleanly_and_is_screenshotted(browser, tiny_run):
    html = tiny_run / "results" / "report" / "index.html"
    console = open_report(browser, html)
    n_figures = html.read_text().count("<img ")
    assert n_figures >= 5
    assert_safe_and_whole(browser, console, n_figures=n_figures)
    assert "smollm2-oneshot on arith" in visible_text(browser)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(max(height, 800), 12000))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report-tiny.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 20_000
    print(f"screenshot of the tiny report: {shot}")


@pytest.mark.e2e
def test_the_snakemake_report_zip_holds_the_project_report_whole(browser, tiny_run, tmp_path):
    """`snakemake --report report.zip` of the tiny run, unpacked: the Snakemake report opens
    without console errors, and its Report entry (the project's page, in the report's own
    frame) shows every figure."""
    import zipfile

    from selenium.webdriver.support.ui import WebDriverWait

    archive = tmp_path / "report.zip"
    snakemake(tiny_run, "--report", str(archive), configfile=tiny_run / "config.yaml")
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(tmp_path / "unpacked")
    browser.get_log("browser")
    browser.get((tmp_path / "unpacked" / "report" / "report.html").as_uri())
    WebDriverWait(browser, 60).until(lambda d: d.execute_script(
        "return typeof app !== 'undefined' && document.querySelector('#loading-screen').style.display === 'none'"))
    entry = browser.execute_script(
        "const k = Object.keys(results).find(k => results[k].name === 'cot-potential.html');"
        "if (k) { app.setView({content: 'html', contentPath: results[k].data_uri, resultPath: k}); }"
        "return k ? results[k] : null")
    assert entry and entry["job_properties"]["rule"] == "report_page", entry
    frame = WebDriverWait(browser, 60).until(lambda d: d.find_element("css selector", "iframe"))
    console = browser.get_log("browser")
    browser.switch_to.frame(frame)
    try:
        WebDriverWait(browser, 60).until(lambda d: d.execute_script(
            "return document.readyState === 'complete' && document.images.length > 0"
            " && [...document.images].every(i => i.complete)"))
        assert browser.execute_script("return document.title") == TITLE  # the frame's page, not the report's
        n_figures = (tiny_run / "results" / "report" / "index.html").read_text().count("<img ")
        widths = browser.execute_script("return [...document.images].map(i => i.naturalWidth)")
        assert len(widths) == n_figures >= 5 and all(w > 0 for w in widths), widths
    finally:
        browser.switch_to.default_content()
    errors = [e for e in console + browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
