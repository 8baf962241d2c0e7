"""Continual learning behind `embodia continual`: one language-conditioned policy trained through a task sequence.

The entry module is `sequence` (phases, strategies, evaluation matrix); `report` turns its results into
the forgetting and forward-transfer tables.
"""
