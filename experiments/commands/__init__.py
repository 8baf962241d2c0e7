"""One module per `embodia` sub-command, listed in `experiments.cli.COMMAND_MODULES`.

Each module exposes `register(subparsers)`, which adds its parser and sets `func` to the function that runs
it; the work itself lives in the rooms below (training, kitchen, causal_study, continual, bench). Start with
`run` or `demo` to see how a command builds the agent through `experiments.kitchen.factory`.
"""
