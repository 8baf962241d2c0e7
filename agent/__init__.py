"""Deciding what to do: the planning domain, planners, skill policies and the embodied loop."""
