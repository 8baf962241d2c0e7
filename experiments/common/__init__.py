"""Small utilities every experiments sub-package shares: nothing here knows envs or agent.

`io` writes files atomically, `media` saves GIFs and captions frames, `stats` gives Wilson intervals,
and `distributed` runs independent jobs in worker processes or on a Ray cluster. Start with `io`.
"""
