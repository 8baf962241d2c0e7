"""Composition root of Embodia: the CLI, configs, factories, reports and studies.

The only package that may import every other one; library packages never import it.
"""
