"""Adapters between envs and agent: what lets the embodied agent plan and act in the kitchen simulator.

The entry module is `factory` (builds encoder, planner, skill policies, affordances and memory from a typed
`AgentOptions`); `episodes.open_session` wires them to an env.
`world` exposes the env to the agent as a world model, `episodes` and `chains` run instruction episodes
and chains, `rollouts` records them, `memory_bridge` feeds them to the knowledge store, `perception_data`
collects frames for the perception encoders, and `llm_local` serves a local language model to the planner.
"""
