"""PPO skill training: `embodia train`, `embodia eval` and `embodia sweep` behind the CLI.

The entry module is `train` (one run from a YAML config to a saved policy). It reads its hyper-parameters
from `config`, builds vectorised envs with `env`, `vec` and `actors`, grounds language with `language` and
`grounding`, clones expert demonstrations with `bc`, keeps resumable state in `session` and `checkpoint`,
and writes `report` / `summary`. `policy_eval` runs seeded evaluation episodes of a policy; `run_eval`
evaluates a finished run, records the result and ships the policy to the agent; `sweep` runs many configs.
"""
