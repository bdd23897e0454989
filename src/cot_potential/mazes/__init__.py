"""The maze experiment (Stechly et al., "Beyond Semantics"): transformers trained from scratch
on A* search traces of mazes, with correct traces, swapped traces or no trace at all.

Modules: ``maze`` (the grid and its query text), ``generators`` (Wilson and the
out-of-distribution generators), ``astar`` (the trace generator), ``tokenizer``,
``datasets`` (training sequences and the pipeline's maze problems), ``training``, ``grpo``
(post-training), ``validate`` (plan and trace validity; shares no code with the generator), ``plans`` (the
pipeline's ``maze_plan`` grader), ``evaluation``, ``curves`` (monotonicity and spikes of
potential curves), ``drawing`` and ``report``.
"""
