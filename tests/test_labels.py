import json

import numpy as np
import pandas as pd
import pytest

from cot_potential.judge import judge_messages, parse_label
from cot_potential.labels import annotation_rows, check_label_kinds, cohen_kappa, read_labels, resolve_labels


def test_cohen_kappa_known_values():
    assert cohen_kappa(["a", "b", "a", "b"], ["a", "b", "a", "b"]) == 1.0
    assert cohen_kappa(["a", "a", "b", "b"], ["a", "b", "a", "b"]) == pytest.approx(0.0)
    # 20 items: 15 agree; marginals 0.5/0.5 and 0.6/0.4 -> p_e = 0.5, kappa = 0.5
    a = ["i"] * 10 + ["j"] * 10
    b = ["i"] * 9 + ["j"] + ["i"] * 3 + ["j"] * 7
    assert cohen_kappa(a, b) == pytest.approx((0.8 - 0.5) / 0.5)
    assert np.isnan(cohen_kappa([], []))


def test_labels_are_read_from_a_filled_export_and_checked(tmp_path):
    path = tmp_path / "labels.csv"
    pd.DataFrame({"event_id": ["a", "b", "c"], "label": ["Insight", "jump", ""], "notes": ["", "", "skip"]}).to_csv(path, index=False)
    labels = read_labels(path)
    assert labels.to_dict("records") == [{"event_id": "a", "label": "insight"}, {"event_id": "b", "label": "jump"}]
    jsonl = tmp_path / "labels.jsonl"
    jsonl.write_text(json.dumps({"event_id": "a", "label": "jump"}) + "\n")
    assert read_labels(jsonl)["label"].tolist() == ["jump"]
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"event_id": ["x"], "label": ["maybe"]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="'x'.*'maybe'"):
        read_labels(bad)
    with pytest.raises(FileNotFoundError):
        read_labels(tmp_path / "missing.csv")


def test_label_source_is_human_validated_judge_or_none():
    spikes = [f"e{i}" for i in range(30)]
    truth = pd.DataFrame({"event_id": spikes, "label": ["insight"] * 15 + ["jump"] * 15})
    full = resolve_labels(spikes, truth, None, min_kappa=0.6, min_overlap=20)
    assert full.source == "human" and len(full.labels) == 30
    judge = truth.copy()
    judge.loc[:1, "label"] = "jump"  # 2 of 30 disagree
    partial = truth.iloc[:25]
    validated = resolve_labels(spikes, partial, judge, min_kappa=0.6, min_overlap=20)
    assert validated.source == "judge" and validated.n_overlap == 25 and validated.kappa > 0.8
    assert validated.labels["e0"] == "insight"  # human labels win where they exist
    unvalidated = resolve_labels(spikes, None, judge, min_kappa=0.6, min_overlap=20)
    assert unvalidated.source == "none" and unvalidated.labels == {} and np.isnan(unvalidated.kappa)
    poor = judge.assign(label=["jump", "insight"] * 15)
    disagreeing = resolve_labels(spikes, partial, poor, min_kappa=0.6, min_overlap=20)
    assert disagreeing.source == "none" and disagreeing.kappa < 0.6
    assert resolve_labels([], None, None, min_kappa=0.6, min_overlap=20).source == "no_spikes"


def test_annotation_rows_carry_the_span_and_its_context():
    text = "We compute. " * 10 + "So 3 + 5 = 8." + " Done."
    a = text.index("So")
    events = pd.DataFrame([{"event_id": "p/0/spike/3", "problem_id": "p", "trace_id": 0, "kind": "spike",
                            "cut_start": 3, "cut_end": 4, "fraction_start": 0.3, "fraction_end": 0.4,
                            "potential_before": 0.1, "potential_after": 0.9, "at_answer": True,
                            "char_start": a, "char_end": a + 13},
                           {"event_id": "p/0/drop/1", "problem_id": "p", "trace_id": 0, "kind": "drop",
                            "cut_start": 1, "cut_end": 2, "fraction_start": 0.1, "fraction_end": 0.2,
                            "potential_before": 0.5, "potential_after": 0.1, "at_answer": False,
                            "char_start": 0, "char_end": 5},
                           {"event_id": "p/0/lucky_guess/4", "problem_id": "p", "trace_id": 0, "kind": "lucky_guess",
                            "cut_start": 4, "cut_end": 5, "fraction_start": 0.4, "fraction_end": 0.5,
                            "potential_before": 0.1, "potential_after": 0.9, "at_answer": True,
                            "char_start": 0, "char_end": 5}])
    traces = pd.DataFrame({"problem_id": ["p"], "trace_id": [0], "text": [text], "answer": ["8"]})
    problems = pd.DataFrame({"problem_id": ["p"], "problem": ["What is 3 + 5?"], "answer": ["8"]})
    rows = annotation_rows(events, traces, problems, model="m", dataset="d", context_chars=24)
    assert rows["kind"].tolist() == ["spike", "drop"]  # spikes and drops are labelled, lucky guesses not
    row = rows.iloc[0]
    assert row.span_text == "So 3 + 5 = 8." and row.context_before == text[a - 24:a] and row.label == ""
    messages = judge_messages(row.to_dict())
    assert "So 3 + 5 = 8." in messages[1]["content"] and "10%" in messages[1]["content"]
    assert "INSIGHT or JUMP" in messages[1]["content"]
    drop = judge_messages(rows.iloc[1].to_dict())[1]["content"]
    assert "from 50% to 10%" in drop and "TANGENT, FLAW or OTHER" in drop and "Correct final answer: 8" in drop
    assert "We co" in drop


def test_judge_replies_are_parsed_to_a_label_or_none():
    assert parse_label("INSIGHT") == "insight"
    assert parse_label(" Label: jump.") == "jump"
    assert parse_label("I think it is an insight, not a jump") == "insight"
    assert parse_label("unsure") is None and parse_label("") is None
    assert parse_label("FLAW", "drop") == "flaw" and parse_label("a tangent, no flaw", "drop") == "tangent"
    assert parse_label("Other.", "drop") == "other" and parse_label("INSIGHT", "drop") is None
    assert parse_label("FLAW") is None  # a spike's reply is read for spike labels only


def test_the_judge_sends_one_greedy_request_per_spike_and_parses_the_reply(smollm2_tokenizer):
    from cot_potential.engine import Completion
    from cot_potential.judge import PROMPT_VERSIONS, judge_events

    class Replies:
        def __init__(self):
            self.seen = []

        def generate(self, requests, sampling, progress=True):
            self.seen.append((requests, sampling))
            texts = ["INSIGHT", "It is a jump.", "no idea", "FLAW"]
            return [[Completion((1,), texts[i], "stop")] for i in range(len(requests))]

    rows = pd.DataFrame({"event_id": ["a", "b", "c", "d"], "kind": ["spike", "spike", "spike", "drop"],
                         "problem": ["What is 2 + 2?"] * 4, "gold": ["4"] * 4,
                         "context_before": ["We add.", float("nan"), "", "We add."],
                         "span_text": ["2 + 2 = 4", "4", "ok", "2 + 2 = 5"],
                         "potential_before": [0.1, 0.2, 0.3, 0.9], "potential_after": [0.9, 0.8, 0.7, 0.1]})
    engine = Replies()
    card = {"name": "judge", "chat_template_kwargs": {}}
    labels = judge_events(engine, smollm2_tokenizer, card, rows)
    assert labels["label"].tolist() == ["insight", "jump", None, "flaw"]
    assert labels["prompt_version"].tolist() == [PROMPT_VERSIONS["spike"]] * 3 + [PROMPT_VERSIONS["drop"]]
    assert (labels["judge_model"] == "judge").all()
    requests, sampling = engine.seen[0]
    assert sampling == {"temperature": 0.0} and all(r.n == 1 for r in requests)
    prompt = smollm2_tokenizer.decode(list(requests[1].prompt_token_ids))
    assert "(start)" in prompt and "20% to 80%" in prompt


def test_drops_are_labelled_under_the_same_gate_as_spikes_but_on_their_own():
    """One label file for both kinds; each kind resolves on its own events and its own kappa:
    a judge that agrees with people on spikes but not on drops labels the spikes only."""
    spikes = [f"s{i}" for i in range(25)]
    drops = [f"d{i}" for i in range(25)]
    human = pd.DataFrame({"event_id": spikes + drops,
                          "label": ["insight", "jump"] * 12 + ["insight"] + ["tangent", "flaw", "other"] * 8 + ["flaw"]})
    judge = human.copy()
    judge.loc[25:, "label"] = ["flaw", "other", "tangent"] * 8 + ["tangent"]  # never agrees on drops
    partial = human.drop(index=[0, 25])  # people left one event of each kind unlabelled
    spike = resolve_labels(spikes, partial, judge, min_kappa=0.6, min_overlap=20, kind="spike")
    drop = resolve_labels(drops, partial, judge, min_kappa=0.6, min_overlap=20, kind="drop")
    assert spike.source == "judge" and spike.n_overlap == 24 and spike.labels["s0"] == "insight"
    assert drop.source == "none" and drop.kappa < 0 and drop.labels == {}
    assert set(resolve_labels(drops, human, None, min_kappa=0.6, min_overlap=20, kind="drop").labels.values()) == \
        {"tangent", "flaw", "other"}
    assert resolve_labels([], human, judge, min_kappa=0.6, min_overlap=20, kind="drop").source == "no_drops"


def test_a_label_must_fit_its_events_kind(tmp_path):
    events = pd.DataFrame({"event_id": ["p/0/spike/1", "p/0/drop/3"], "kind": ["spike", "drop"]})
    path = tmp_path / "labels.csv"
    pd.DataFrame({"event_id": ["p/0/spike/1", "p/0/drop/3"], "label": ["Insight", "FLAW"]}).to_csv(path, index=False)
    check_label_kinds(read_labels(path), events, "mine")
    with pytest.raises(ValueError, match="'p/0/drop/3' is a drop.*'jump'"):
        check_label_kinds(pd.DataFrame({"event_id": ["p/0/drop/3"], "label": ["jump"]}), events, "mine")
    with pytest.raises(ValueError, match="mine: 1 event ids are not events of this run"):
        check_label_kinds(pd.DataFrame({"event_id": ["q/0/drop/3"], "label": ["flaw"]}), events, "mine")
