"""Keep the terminal to what the user asked for: third-party warnings and chatter only with `-v`.

Python warnings (deprecations inside gymnasium, torch, SB3, ...) say nothing a user of `embodia` can act on, and
progress bars of local model loads are noise around a command's own output. `-v` shows everything again.
Our own log messages at WARNING level are kept either way: they are meant for the user.
"""

from __future__ import annotations

import logging
import os
import warnings

# Third-party loggers that report internals at WARNING level; raised to ERROR unless -v.
CHATTY_LOGGERS = ("transformers", "huggingface_hub", "ray", "filelock", "urllib3", "matplotlib", "PIL")


def configure(verbose: bool) -> None:
    """Filter warnings and third-party chatter unless `verbose`; child processes inherit the same setting."""
    if verbose:
        return
    warnings.simplefilter("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")  # env workers and Ray workers start with it
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
