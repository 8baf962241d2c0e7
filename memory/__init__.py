"""Remembering and continuing to learn: the SQLite knowledge store and continual-learning strategies."""
