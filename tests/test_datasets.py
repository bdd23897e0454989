import json

import pandas as pd
import pytest

from conftest import shared_file
from cot_potential.datasets import DatasetError, load_problems, repair_control_characters
from cot_potential.synthetic import Difficulty, generate


def test_math500_field_mapping():
    df = load_problems({"loader": "jsonl", "path": str(shared_file("math500.jsonl")),
                        "fields": {"id": "unique_id"}, "metadata": ["level", "solution"]}, "math500")
    assert len(df) == 500 and df["problem_id"].is_unique
    assert df.loc[0, "problem_id"].startswith("test/")
    assert set(df.columns) >= {"problem_id", "problem", "answer", "level", "solution"}


def test_aime_answers_are_strings_whatever_the_source_type():
    a24 = load_problems({"loader": "jsonl", "path": str(shared_file("aime2024.jsonl")), "fields": {"id": "id"}}, "a24")
    a25 = load_problems({"loader": "jsonl", "path": str(shared_file("aime2025.jsonl")), "fields": {"id": "id"}}, "a25")
    assert a24["answer"].map(type).eq(str).all() and a25["answer"].map(type).eq(str).all()
    assert "025" in set(a24["answer"])  # zero padding is kept; the grader handles it


def test_gsm8k_answer_pattern_and_positional_ids():
    df = load_problems({"loader": "jsonl", "path": str(shared_file("gsm8k_test.jsonl")),
                        "fields": {"problem": "question"}, "answer_pattern": "####\\s*(.+)$",
                        "limit": 5}, "gsm8k")
    assert len(df) == 5 and df.loc[0, "problem_id"] == "gsm8k-00000"
    first = json.loads(shared_file("gsm8k_test.jsonl").read_text().splitlines()[0])
    assert df.loc[0, "answer"] == first["answer"].split("####")[-1].strip()


def test_aime2025_mangled_latex_is_repaired_with_a_warning(caplog):
    spec = {"loader": "jsonl", "path": str(shared_file("aime2025.jsonl")), "fields": {"id": "id"}}
    df = load_problems(spec, "a25").set_index("problem_id")
    assert "\\frac" in df.loc["18", "problem"] and "\f" not in df.loc["18", "problem"]
    assert "\\triangle" in df.loc["19", "problem"] and "\t" not in df.loc["19", "problem"]
    assert "\\frac" in df.loc["27", "problem"]
    assert sum("repaired" in r.message for r in caplog.records) == 3
    with pytest.raises(DatasetError, match="aime2025.jsonl:19"):
        load_problems({**spec, "control_characters": "reject"}, "a25")


def test_repair_only_touches_control_characters_before_letters():
    assert repair_control_characters("\frac{1}{2}") == "\\frac{1}{2}"
    assert repair_control_characters("a\t1") == "a\t1"


def test_bad_records_are_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"problem": "1+1", "answer": "2"}\n{"problem": "", "answer": "3"}\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: problem is empty"):
        load_problems({"loader": "jsonl", "path": str(path)}, "bad")
    path.write_text('{"question": "1+1", "answer": "2"}\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:1: missing field 'problem'"):
        load_problems({"loader": "jsonl", "path": str(path)}, "bad")


def test_synthetic_is_seeded_and_correct():
    a = generate(50, 3, Difficulty())
    assert a == generate(50, 3, Difficulty())
    assert a != generate(50, 4, Difficulty())
    for record in a:
        numbers = [int(t) for t in record["problem"].replace(".", " ").replace("?", " ").split() if t.isdigit()]
        op = record["operations"]
        expected = {"add": numbers[0] + numbers[1], "sub": numbers[0] - numbers[1],
                    "mul": numbers[0] * numbers[1]}[op]
        assert int(record["answer"]) == expected


def _solve(problem: str) -> int:
    """Work a generated word problem out from its sentences (an independent reading of the text)."""
    sentences = [s.strip() for s in problem.split(".") if s.strip()][:-1] + [problem.split(".")[-1]]
    value = None
    for sentence in sentences:
        numbers = [int(t) for t in sentence.replace(",", " ").replace("?", " ").split() if t.isdigit()]
        if not numbers:
            continue
        if value is None and "in each of them" in sentence:
            value = numbers[0] * numbers[1]
        elif value is None:
            value = numbers[0]
        elif any(w in sentence for w in ("gives away", "loses", "uses", "to a friend")):
            value -= numbers[0]
        else:
            value += numbers[0]
    return value


def test_synthetic_problems_of_several_steps_are_worked_out_from_their_text():
    recs = generate(200, 1, Difficulty(min_steps=2, max_steps=3, min_operand=2, max_operand=9))
    assert {r["steps"] for r in recs} == {2, 3}
    for r in recs:
        assert int(r["answer"]) == _solve(r["problem"]), r
        assert int(r["answer"]) >= 1 and len(r["operations"].split("+")) == r["steps"]
        assert r["problem"].count("Then") + r["problem"].count("After that") + r["problem"].count("Later") == r["steps"] - 1
    for opening in ("Then", "After that", "Later"):  # later steps are worded in several ways
        assert sum(opening in r["problem"] for r in recs) >= 20


def test_synthetic_one_step_problems_are_unchanged_by_the_later_step_knobs():
    assert generate(20, 5, Difficulty()) == generate(20, 5, Difficulty(max_steps=1))
    ones = generate(50, 3, Difficulty())
    assert all(r["steps"] == 1 and int(r["answer"]) == _solve(r["problem"]) for r in ones)


def test_synthetic_knob_validation():
    recs = generate(30, 1, Difficulty(min_steps=2, max_steps=2, operations=("add", "sub")))
    assert all(r["steps"] == 2 for r in recs) and all(int(r["answer"]) >= 0 for r in recs)
    with pytest.raises(ValueError):
        Difficulty(min_operand=5, max_operand=2)
    with pytest.raises(ValueError):
        Difficulty(operations=("div",))
    with pytest.raises(ValueError, match="max_steps <= 3"):
        Difficulty(max_steps=4)


def test_aime2025_reject_names_every_mangled_record():
    spec = {"loader": "jsonl", "path": str(shared_file("aime2025.jsonl")), "fields": {"id": "id"},
            "control_characters": "reject"}
    with pytest.raises(DatasetError) as err:
        load_problems(spec, "a25")
    message = str(err.value)
    assert "3 records rejected" in message
    lines = [i for i, line in enumerate(shared_file("aime2025.jsonl").read_text().splitlines(), 1)
             if "\f" in json.loads(line)["problem"] or "\t" in json.loads(line)["problem"]]
    assert len(lines) == 3
    for lineno in lines:
        assert f"aime2025.jsonl:{lineno}: problem contains control characters" in message
    assert "'\\x0c'" in message and "'\\t'" in message


def test_aime2025_keep_leaves_the_control_characters():
    spec = {"loader": "jsonl", "path": str(shared_file("aime2025.jsonl")), "fields": {"id": "id"},
            "control_characters": "keep"}
    df = load_problems(spec, "a25").set_index("problem_id")
    assert "\f" in df.loc["18", "problem"] and "\t" in df.loc["19", "problem"]


BAD_RECORDS = [
    (b'{"problem": "1+1", "answer": "2"}\n{"problem": ["1+1"], "answer": "2"}\n', r"bad.jsonl:2: problem has type list"),
    (b'{"problem": "1+1", "answer": {"value": 2}}\n', r"bad.jsonl:1: answer has type dict"),
    (b'{"problem": "1+1", "answer": true}\n', r"bad.jsonl:1: answer is True"),
    (b'{"problem": "1+1", "answer": null}\n', r"bad.jsonl:1: answer is None"),
    (b'{"problem": "1+1", "answer": NaN}\n', r"bad.jsonl:1: answer is nan, expected text or a finite number"),
    (b'{"problem": "1+1", "answer": "2"}\n\n{"problem": "1+2", "answer": "3"\n', r"bad.jsonl:3: not valid JSON"),
    (b'["1+1", "2"]\n', r"bad.jsonl:1: expected a JSON object, got list"),
    (b'{"problem": "1+1", "answer": "2"}\n{"problem": "caf\xe9", "answer": "3"}\n', r"bad.jsonl:2: not valid UTF-8 \(byte 0xe9"),
    (b'{"problem": "x\\ud800y", "answer": "3"}\n', r"bad.jsonl:1: problem is not valid Unicode text \(lone surrogate"),
    (b'{"problem": "   ", "answer": "3"}\n', r"bad.jsonl:1: problem is empty"),
    (b'{"id": "a", "problem": "1", "answer": "1"}\n{"id": "a", "problem": "2", "answer": "2"}\n',
     r"bad.jsonl:2: duplicate problem id 'a'"),
    (b'{"problem": "1+1", "answer": "#### 2"}\n{"problem": "1+2", "answer": "three"}\n',
     r"bad.jsonl:2: answer does not match"),
    (b'\n\n', r"dataset 'bad' has no records"),
]


@pytest.mark.parametrize(("content", "message"), BAD_RECORDS, ids=[m.split(": ")[-1][:30] for _, m in BAD_RECORDS])
def test_every_bad_record_is_named(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    spec = {"loader": "jsonl", "path": str(path), "fields": {"id": "id" if b'"id"' in content else None}}
    if b"####" in content:
        spec["answer_pattern"] = "####\\s*(.+)$"
    with pytest.raises(DatasetError, match=message):
        load_problems(spec, "bad")


def test_nul_bytes_are_repaired_with_a_warning_or_rejected(tmp_path, caplog):
    path = tmp_path / "nul.jsonl"
    path.write_text('{"problem": "1\\u0000+1", "answer": "2"}\n')
    assert load_problems({"loader": "jsonl", "path": str(path)}, "nul").loc[0, "problem"] == "1+1"
    with pytest.raises(DatasetError, match=r"nul.jsonl:1: problem contains control characters \['\\x00'\]"):
        load_problems({"loader": "jsonl", "path": str(path), "control_characters": "reject"}, "nul")


def test_imported_trace_files_are_validated_record_by_record(tmp_path):
    from cot_potential.traces import imported_texts

    problems = pd.DataFrame({"problem_id": ["a", "b"], "problem": ["1", "2"], "answer": ["1", "2"]})
    path = tmp_path / "traces.jsonl"
    path.write_text('{"problem_id": "a", "text": "so \\\\boxed{1}"}\n{"problem_id": "zz", "text": "x"}\n')
    texts = imported_texts({"path": str(path)}, problems)
    assert texts.to_dict("records") == [{"problem_id": "a", "text": "so \\boxed{1}"}]
    path.write_text('{"problem_id": "a", "text": "ok"}\n{"problem_id": "b", "txt": "typo"}\n')
    with pytest.raises(DatasetError, match=r"traces.jsonl:2: missing field 'text'"):
        imported_texts({"path": str(path)}, problems)
    path.write_text('{"problem_id": 7, "text": null}\n')
    with pytest.raises(DatasetError, match=r"traces.jsonl:1: text is None"):
        imported_texts({"path": str(path)}, problems)
