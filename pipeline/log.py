"""Logging set-up shared by the CLI, the crawler process and the flows.

Messages go to stderr through rich when it is a terminal, plain text otherwise, so
that piped output (``--json``) stays machine-readable on stdout.
"""

from __future__ import annotations

import logging
import os
import sys

LOGGER_NAME = "dreamcrawl"


def setup_logging(verbosity: int = 0) -> None:
    """Configure the ``dreamcrawl`` logger: WARNING by default, INFO with -v, DEBUG with -vv."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    env_level = os.environ.get("DREAMCRAWL_LOG_LEVEL")
    if env_level:
        level = logging.getLevelName(env_level.upper())
        if not isinstance(level, int):
            level = logging.INFO
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    if logger.handlers:
        return
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
