"""Errors that are the user's to fix.

A :class:`UserError` anywhere below the CLI becomes exit code 2 with its message on one
line of stderr; anything else is an unexpected failure (exit code 1). Keeping that
distinction in one exception type lets library code stay free of ``sys.exit``.
"""


class UserError(Exception):
    """Bad usage or bad input: the message says what was wrong and what is accepted."""


class BlobStoreUnavailable(RuntimeError):
    """The blob store could not be reached (after its retries): nothing was recorded,
    and the work can be resumed once it is back."""
