"""Side-by-side benchmarks behind `embodia bench TARGET`; each module exposes `run(args) -> dict`.

`experiments.commands.bench` finds the module named by TARGET (env, train, planner, perception, memory,
scale) and prints what its `run` returns; the figures go to BENCHMARKS.md with the command that made them.
"""
