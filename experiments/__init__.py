"""Composition root of Embodia: the CLI, configs, and the rooms that compose the library packages.

The only package that may import every other one; library packages never import it. `cli` is the entry
point; `commands` holds one module per sub-command; `bench`, `causal_study`, `continual`, `training` and
`kitchen` (the envs <-> agent adapters) do the work; `common` holds the small shared utilities. A room
imports only the rooms below it (docs/ARCHITECTURE.md, checked by tests/test_architecture.py).
"""
