"""Imitation learning for skill policies: expert demonstrations and DAgger data as Minari datasets, behaviour
cloning into the same SB3 policy the PPO skills use, and evaluation from chain-like starts.
"""
