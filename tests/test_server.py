"""The server backend against a tiny fake OpenAI-compatible server on localhost: the request it
sends, retries, the prompt check, and resuming a job that a dead server stopped."""

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from cot_potential.engine import EngineSettings, Request
from cot_potential.rollouts import sample_prefixes
from cot_potential.sample_store import SampleStore
from cot_potential.endpoint import ServerError
from cot_potential.server import ServerEngine

SECRET = "sk-test-0123456789"


class FakeServer:
    """Answers like vLLM's server: ``/v1/models``, ``/version``, ``/v1/completions`` with the
    prompt's token ids echoed. ``failures`` is a list of statuses for the next completion
    requests (then answers normally); after ``die_after`` answered requests it refuses all."""

    def __init__(self):
        self.bodies, self.headers, self.failures = [], [], []
        self.die_after, self.count_prompt = None, lambda ids: len(ids)
        self.echo_ids, self.lock = True, threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/v1/models":
                    self.reply(200, {"data": [{"id": "tiny", "max_model_len": 64}]})
                elif self.path == "/version":
                    self.reply(200, {"version": "0.0-fake"})
                else:
                    self.reply(404, {"error": "no such path"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    if fake.die_after is not None and len(fake.bodies) >= fake.die_after:
                        self.reply(503, {"error": "dead"})
                        return
                    fake.headers.append(dict(self.headers))
                    if fake.failures:
                        self.reply(fake.failures.pop(0), {"error": "try later"})
                        return
                    fake.bodies.append(body)
                self.reply(200, fake.answer(body))

            def reply(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, body):
        ids = body["prompt"]
        choices = [{"index": k, "text": f"p{len(ids)}-s{k}", "token_ids": [5] * (k + 1), "finish_reason": "stop",
                    **({"prompt_token_ids": ids} if self.echo_ids else {})} for k in range(body["n"])]
        return {"choices": choices, "usage": {"prompt_tokens": self.count_prompt(ids)}}


@pytest.fixture
def fake():
    server = FakeServer()
    yield server
    server.httpd.shutdown()


def settings(fake, **kw):
    return EngineSettings(backend="openai", base_url=fake.url + "/", served_model="tiny",
                          retry_backoff_s=0.01, max_retries=2, max_concurrency=2, **kw)


def test_one_request_per_prefix_with_its_token_ids_n_and_budget(fake, monkeypatch, caplog):
    monkeypatch.setenv("TINY_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    engine = ServerEngine("weights/dir", settings=settings(fake, api_key_env="TINY_KEY"), seed=3)
    assert engine.max_model_len == 64 and engine.facts == {"model": "tiny", "max_model_len": 64,
                                                          "version": "0.0-fake"}
    requests = [Request([1, 2, 3], 3, 20), Request([1] * 60, 2, 20)]
    out = engine.generate(requests, {"temperature": 0.7, "top_p": 0.9})
    assert [[c.text for c in group] for group in out] == [["p3-s0", "p3-s1", "p3-s2"], ["p60-s0", "p60-s1"]]
    assert out[0][1].token_ids == (5, 5)
    by_len = {len(b["prompt"]): b for b in fake.bodies}
    assert by_len[3] == {"model": "tiny", "prompt": [1, 2, 3], "n": 3, "max_tokens": 20, "return_token_ids": True,
                         "temperature": 0.7, "top_p": 0.9}
    assert by_len[60]["max_tokens"] == 4  # the context window caps the budget
    assert all(h["Authorization"] == f"Bearer {SECRET}" for h in fake.headers)
    assert SECRET not in caplog.text


def test_seeds_are_sent_only_when_asked(fake):
    ServerEngine("w", settings=settings(fake, request_seeds=True), seed=3).generate([Request([1], 1, 4)] * 2, {})
    seeds = [b["seed"] for b in fake.bodies]
    assert len(set(seeds)) == 2


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_server_errors_are_retried(fake, status):
    fake.failures = [status, status]
    out = ServerEngine("w", settings=settings(fake), seed=0).generate([Request([1, 2], 2, 4)], {})
    assert len(out[0]) == 2 and len(fake.bodies) == 1


def test_retries_end_with_an_error_naming_the_endpoint(fake):
    fake.failures = [503] * 3
    with pytest.raises(ServerError, match=rf"{fake.url}/v1/completions: HTTP 503 after 3 tries"):
        ServerEngine("w", settings=settings(fake), seed=0).generate([Request([1], 1, 4)], {})


def test_a_bad_request_is_not_retried(fake):
    fake.failures = [400]
    with pytest.raises(ServerError, match="HTTP 400 after 1 tries"):
        ServerEngine("w", settings=settings(fake), seed=0).generate([Request([1], 1, 4)], {})


def test_a_server_that_received_other_tokens_is_an_error(fake):
    fake.count_prompt = lambda ids: len(ids) + 1  # as if it re-tokenized, or added a BOS
    fake.echo_ids = False
    with pytest.raises(ServerError, match="counted 3 prompt tokens, the prefix has 2"):
        ServerEngine("w", settings=settings(fake), seed=0).generate([Request([1, 2], 1, 4)], {})


def test_unknown_served_model_and_missing_key_are_clear_errors(fake, monkeypatch):
    with pytest.raises(ServerError, match=r"serves no model 'other' \(it serves \['tiny'\]\)"):
        ServerEngine("w", settings=EngineSettings(backend="openai", base_url=fake.url, served_model="other"), seed=0)
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(ServerError, match="NO_SUCH_KEY is not set"):
        ServerEngine("w", settings=settings(fake, api_key_env="NO_SUCH_KEY"), seed=0)


def test_a_refused_connection_names_the_endpoint(fake):
    url = fake.url
    fake.httpd.shutdown()
    fake.httpd.server_close()
    with pytest.raises(ServerError, match=rf"is the server at {url} up\?"):
        ServerEngine("w", settings=EngineSettings(backend="openai", base_url=url, served_model="tiny",
                                                  max_retries=1, retry_backoff_s=0.01), seed=0)


def prefix_table(n_problems=4, cuts=3):
    rows = [{"prefix_id": f"p{p}/0/{c}", "problem_id": f"p{p}", "prompt_token_ids": [1, 2] + [3] * c,
             "max_tokens": 10 - c} for p in range(n_problems) for c in range(cuts)]
    return pd.DataFrame(rows)


def test_a_dead_server_loses_nothing_and_a_rerun_sends_only_what_is_missing(fake, tmp_path):
    store = SampleStore(tmp_path / "store", "identity")
    table = prefix_table()

    def run():
        return sample_prefixes(table, 3, {}, store=store, progress=False, seed=1,
                               make_engine=lambda seed: ServerEngine("w", settings=settings(fake), seed=seed))

    fake.die_after = 5
    with pytest.raises(ServerError, match=rf"{fake.url}/v1/completions: HTTP 503 .*5 of 12 requests finished"):
        run()
    assert len(store.load(table["problem_id"])) == 5 * 3
    fake.die_after = None
    sent_before = len(fake.bodies)
    rollouts = run()
    assert len(fake.bodies) - sent_before == 12 - 5
    assert len(rollouts) == 12 * 3 and sorted(rollouts["sample"].unique()) == [0, 1, 2]
    assert run().equals(rollouts) and len(fake.bodies) - sent_before == 7  # all stored now


def test_a_served_model_has_an_identity_of_its_own_that_ignores_the_url():
    from cot_potential.models import ModelSpec

    def spec(**engine):
        return ModelSpec(name="m", weights="w", revision=None, prompt_name="p", prompt={}, thinking=False,
                         chat_template_kwargs={}, sampling={}, max_tokens=8, engine=engine)

    in_process = spec(backend="vllm").identity()
    assert "served_by" not in in_process and in_process == spec().identity()
    served = spec(backend="openai", base_url="http://a:1").identity()
    assert served["served_by"] == {"backend": "openai", "model": "w"}
    assert served == spec(backend="openai", base_url="http://b:2").identity()
    assert spec(backend="openai", served_model="x").identity() != served


def test_each_result_is_handed_on_while_later_requests_are_still_in_flight(fake):
    """The store gets a request's completions as soon as they arrive: the second request is
    answered only after the first one's ``on_result`` ran (waiting for every request first,
    as FIRST_EXCEPTION did, fails here and would lose everything on a later failure)."""
    first_kept, answer = threading.Event(), fake.answer

    def second_waits_for_the_first(body):
        if len(fake.bodies) > 1 and not first_kept.wait(10):
            return {"choices": []}  # an answer the client rejects: no result came before the call ended
        return answer(body)

    fake.answer = second_waits_for_the_first
    engine = ServerEngine("w", settings=settings(fake), seed=1)
    kept = []
    engine.generate([Request([1, 2], 1, 5), Request([1, 2, 3], 1, 5)], {}, progress=False,
                    on_result=lambda i, completions: (kept.append(i), first_kept.set()))
    assert sorted(kept) == [0, 1]
