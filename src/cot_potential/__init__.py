__version__ = "0.1.0"


def __getattr__(name: str):
    # plot_curve imports matplotlib: only when asked for, never when a job imports the package.
    if name == "plot_curve":
        from .curves import plot_curve

        return plot_curve
    raise AttributeError(f"module 'cot_potential' has no attribute {name!r}")
