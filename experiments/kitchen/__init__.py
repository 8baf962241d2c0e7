"""Adapters between envs and agent: the one room where the kitchen simulator and the embodied agent meet.

The entry module is `factory` (builds encoder, planner, env, world and skill policies from typed options).
`world` exposes the env to the agent as a world model, `episodes` and `chains` run instruction episodes
and chains, `rollouts` records them, `memory_bridge` feeds them to the knowledge store, `perception_data`
collects frames for the perception encoders, and `llm_local` serves a local language model to the planner.
"""
