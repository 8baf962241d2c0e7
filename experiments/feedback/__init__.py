"""Feedback into the language core: measured scenarios where memory and causal findings change choices.

`scenario` runs the causal scenario behind `embodia bench feedback`; `plan_changes` counts which planner
test instructions a memory changes (none may change when the instruction names its objects).
"""
