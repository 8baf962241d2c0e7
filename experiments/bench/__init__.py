"""Side-by-side benchmarks behind `embodia bench TARGET`; each module exposes `run(args) -> dict`."""
