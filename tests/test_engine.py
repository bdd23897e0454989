"""What the engine hands vLLM comes from its public functions (the ones bench/'s bare baseline
calls too), tested against a stand-in ``vllm`` module that records what it is given."""

import os
import sys
import types

from cot_potential import engine


class FakeLLM:
    calls: list = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.env = {k: v for k, v in os.environ.items() if k.startswith("VLLM_")}
        self.llm_engine = types.SimpleNamespace(model_config=types.SimpleNamespace(max_model_len=10))

    def generate(self, prompts, params, use_tqdm=True):
        FakeLLM.calls.append((prompts, params))
        out = types.SimpleNamespace(token_ids=[1], text="x", finish_reason="stop")
        return [types.SimpleNamespace(outputs=[out] * p["n"]) for p in params]


def fake_vllm(monkeypatch):
    module = types.SimpleNamespace(LLM=FakeLLM, SamplingParams=lambda **kw: kw,
                                   inputs=types.SimpleNamespace(TokensPrompt=lambda **kw: kw))
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.inputs", module.inputs)
    monkeypatch.setattr(os, "environ", dict(os.environ))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # the CPU backend
    FakeLLM.calls = []


def test_the_engine_gives_vllm_what_the_shared_functions_build(monkeypatch):
    fake_vllm(monkeypatch)
    settings = engine.EngineSettings(max_model_len=10, max_num_seqs=3, cpu_kvcache_gib=2)
    eng = engine.Engine("w", revision="r", settings=settings, seed=5)
    assert eng.llm.kwargs == engine.llm_arguments("w", "r", settings, 5)
    assert eng.llm.kwargs["max_model_len"] == 10 and eng.llm.kwargs["max_num_seqs"] == 3
    assert eng.llm.env["VLLM_CPU_KVCACHE_SPACE"] == "2"
    requests = [engine.Request([1, 2, 3], 2, 100), engine.Request([1] * 9, 1, 4), engine.Request([1] * 12, 1, 4)]
    eng.generate(requests, {"temperature": 0.7})
    prompts, params = FakeLLM.calls[0]
    assert (prompts, params) == engine.vllm_inputs(requests, {"temperature": 0.7}, 10)
    assert [p["prompt_token_ids"] for p in prompts] == [[1, 2, 3], [1] * 9, [1] * 12]
    # One request of n samples each; budgets fit the window, at least one token.
    assert [(p["n"], p["max_tokens"], p["temperature"]) for p in params] == [(2, 7, 0.7), (1, 1, 0.7), (1, 1, 0.7)]


def test_unset_limits_are_left_to_vllm():
    kwargs = engine.llm_arguments("w", None, engine.EngineSettings(), 1)
    assert "max_model_len" not in kwargs and "max_num_seqs" not in kwargs
    assert kwargs["seed"] == 1 and kwargs["enable_prefix_caching"] is True


def test_with_a_record_folder_each_engine_writes_what_it_was_asked(monkeypatch, tmp_path):
    import numpy as np

    from cot_potential.engine_record import RECORD_ENV, completions_digest, read_records

    fake_vllm(monkeypatch)
    settings = engine.EngineSettings(max_model_len=10)
    engine.Engine("w", revision=None, settings=settings, seed=5).generate([engine.Request([1], 1, 2)], {})
    assert not list(tmp_path.iterdir())  # no folder, no record
    monkeypatch.setenv(RECORD_ENV, str(tmp_path))
    eng = engine.Engine("w", revision=None, settings=settings, seed=5, threads=2)
    ids = np.array([1, 2, 3])  # token ids as they come out of a parquet table
    out = eng.generate([engine.Request(ids, np.int64(2), np.int64(100))], {"temperature": 0.7})
    eng.generate([engine.Request([4], 1, 3)], {"temperature": 0.7})
    (record,) = read_records(tmp_path)
    assert record["settings"] == {**settings.__dict__} and (record["seed"], record["threads"]) == (5, 2)
    assert record["cwd"] == os.getcwd()  # the weights may be a path relative to it
    assert record["began"] <= record["ready"] <= record["calls"][0]["began"] <= record["calls"][0]["ended"]
    first, second = record["calls"]
    assert first["requests"] == [[[1, 2, 3], 2, 100]] and second["requests"] == [[[4], 1, 3]]
    assert first["sampling"] == {"temperature": 0.7} and first["tokens"] == 2
    assert first["digest"] == completions_digest([[(c.text, c.token_ids, c.finish_reason) for c in out[0]]])
    assert first["digest"] != second["digest"]


def test_auto_dtype_is_float32_only_on_a_cpu_without_bf16_arithmetic():
    avx2 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma avx512f\n"
    sapphire = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16\n"
    graviton = "processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n"
    assert not engine.cpu_has_bf16(avx2) and engine.cpu_has_bf16(sapphire) and engine.cpu_has_bf16(graviton)
    assert engine.engine_dtype("auto", on_gpu=False, cpuinfo=avx2) == "float32"
    assert engine.engine_dtype("auto", on_gpu=False, cpuinfo=sapphire) == "auto"
    assert engine.engine_dtype("auto", on_gpu=True, cpuinfo=avx2) == "auto"  # GPUs have bf16
    assert engine.engine_dtype("bfloat16", on_gpu=False, cpuinfo=avx2) == "bfloat16"  # asked for: kept
