__version__ = "0.1.0"


def __getattr__(name: str):
    # ``cot_potential.plot_curve`` (curves.py) needs matplotlib and seaborn: loaded only when
    # a user asks for it. No rule does, so the rules' envs (tests/test_envs.py, which follows
    # every static import of every module a script reaches) need not carry them.
    if name == "plot_curve":
        import importlib

        return importlib.import_module(f"{__name__}.curves").plot_curve
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
