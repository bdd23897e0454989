import pandas as pd

from cot_potential.potentials import compute_potentials


def _prefixes():
    return pd.DataFrame({
        "prefix_id": ["p/0/0", "p/0/1"], "problem_id": ["p", "p"], "trace_id": [0, 0],
        "cut_index": [0, 1], "cut_token": [0, 5], "cut_fraction": [0.0, 1.0],
        "nominal_fraction": [0.0, 1.0], "char_offset": [0, 20], "trace_correct": [True, True],
    })


def test_counts_potential_ci_and_answer_distribution():
    grades = pd.DataFrame({
        "prefix_id": ["p/0/0"] * 4 + ["p/0/1"] * 4,
        "sample": [0, 1, 2, 3] * 2,
        "answer": ["7", "8", None, "7", "7", "7", "7", None],
        "answer_key": ["7", "8", None, "7", "7", "7", "7", None],
        "verdict": ["correct", "incorrect", "no_answer", "correct", "correct", "correct", "correct", "no_answer"],
        "finish_reason": ["stop", "stop", "stop", "stop", "stop", "stop", "stop", "length"],
        "n_tokens": [10] * 8,
    })
    out = compute_potentials(_prefixes(), grades)
    first, last = out.iloc[0], out.iloc[1]
    assert (first.n_samples, first.n_correct, first.n_incorrect, first.n_no_answer) == (4, 2, 1, 1)
    assert first.potential == 0.5 and first.ci_low < 0.5 < first.ci_high
    assert (last.n_correct, last.n_no_answer, last.n_truncated) == (3, 1, 1)
    assert first.answers[0] == {"answer": "7", "count": 2, "verdict": "correct"}
    assert [a["answer"] for a in first.answers] == ["7", "8"]


def test_missing_grades_are_an_error():
    grades = pd.DataFrame({"prefix_id": ["p/0/0"], "sample": [0], "answer": ["7"], "answer_key": ["7"],
                           "verdict": ["correct"], "finish_reason": ["stop"], "n_tokens": [3]})
    try:
        compute_potentials(_prefixes(), grades)
    except ValueError as err:
        assert "no graded completions" in str(err)
    else:
        raise AssertionError("expected an error")


def test_prefixes_without_any_answer_have_empty_answer_lists():
    """A model that never answers (an untrained maze model) still gets its potentials."""
    grades = pd.DataFrame({
        "prefix_id": ["p/0/0", "p/0/0", "p/0/1", "p/0/1"], "sample": [0, 1, 0, 1],
        "answer": [None] * 4, "answer_key": [None] * 4, "verdict": ["no_answer"] * 4,
        "finish_reason": ["length"] * 4, "n_tokens": [10] * 4,
    })
    out = compute_potentials(_prefixes(), grades)
    assert out["answers"].tolist() == [[], []]
    assert (out["potential"] == 0).all() and (out["n_no_answer"] == 2).all()
