import pytest

from cot_potential.answers import assistant_text, extract_answer, grading_form, last_boxed, last_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so \\boxed{7}.", "7"),
        ("\\boxed{3} then \\boxed{4}", "4"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("\\boxed{3} and a truncated \\boxed{4", "3"),
        ("\\boxed {12}", "12"),
        ("\\fbox{5}", "5"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("\\boxed{\\boxed{9}}", "\\boxed{9}"),
        ("no box here: 42", None),
        ("\\boxed", None),
        ("}}}{{{\\boxed{1}", "1"),
    ],
)
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


def test_last_boxed_is_linear_on_a_megabyte_of_openers():
    text = "\\boxed{" * 150_000 + "1"
    assert last_boxed(text) is None
    assert last_boxed(text + "}") == "1"


def test_assistant_text_stops_at_first_stop_string():
    assert assistant_text("a \\boxed{1}<|im_end|>\\boxed{2}", ("<|im_end|>",)) == "a \\boxed{1}"


def test_truncated_completion_has_no_answer_even_with_a_box():
    result = extract_answer("\\boxed{3}", finish_reason="length")
    assert result.answer is None and result.reason == "truncated"


def test_thinking_models_answer_after_the_last_think_close():
    text = "<think>maybe \\boxed{1}</think> so \\boxed{2}"
    assert extract_answer(text, thinking=True).answer == "2"
    assert extract_answer("<think>still \\boxed{1}", thinking=True).reason == "unfinished_thinking"


def test_unboxed_policy():
    assert extract_answer("it is 3 * 8 = 24").reason == "no_box"
    assert extract_answer("it is 3 * 8 = 24", unboxed="last_number").answer == "24"
    assert extract_answer("\\boxed{ }").reason == "empty_box"
    with pytest.raises(ValueError):
        extract_answer("x", unboxed="guess")


def test_last_number_handles_separators():
    assert last_number("total 1,234.") == "1,234"
    assert last_number("-5 apples") == "-5"


def test_extracted_answers_are_always_writable_text():
    """A lone surrogate (text decoded with surrogateescape) would crash the grades' parquet write."""
    answer = extract_answer("\\boxed{3\udcff}").answer
    assert answer == "3\ufffd" and answer.encode("utf-8")


@pytest.mark.parametrize(
    ("answer", "form"),
    [
        ("104.", "104"),
        ("\\frac{1}{2}.", "\\frac{1}{2}"),
        (" 3 ", "3"),
        ("\\textbf{(073)}", "073"),
        ("\\textbf{(113) }", "113"),
        ("\\text{ 42 }", "42"),
        ("1e-7", "1\\times10^{-7}"),
        ("2.5E+3", "2.5\\times10^{+3}"),
        # unchanged: dots that are not a full stop, text that is not a number, e-notation
        # inside an expression (2e-7x may be 2e - 7x), unbalanced parentheses
        ("1, 2, \\ldots", "1, 2, \\ldots"),
        ("1, 2, ...", "1, 2, ..."),
        ("\\text{(C)}", "\\text{(C)}"),
        ("\\text{Evelyn}", "\\text{Evelyn}"),
        ("2e-7x", "2e-7x"),
        ("\\text{(12}", "\\text{(12}"),
    ],
)
def test_grading_form_undoes_formatting_that_states_the_same_value(answer, form):
    assert grading_form(answer) == form
