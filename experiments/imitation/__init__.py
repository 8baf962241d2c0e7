"""Imitation learning for skill policies, from chain-like starts.

Expert demonstrations and DAgger data are Minari datasets; behaviour cloning trains the same SB3 policy the PPO
skills use, and evaluation runs from chain-like starts. The entry module is `dagger`.
"""
