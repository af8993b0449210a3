"""Errors that are the user's to fix.

A :class:`UserError` anywhere below the CLI becomes exit code 2 with its message on one
line of stderr; anything else is an unexpected failure (exit code 1). Keeping that
distinction in one exception type lets library code stay free of ``sys.exit``.
"""


class UserError(Exception):
    """Bad usage or bad input: the message says what was wrong and what is accepted."""


class StoreUnavailable(RuntimeError):
    """A store the work writes to (the catalog or the blobs) could not be reached or
    written, after any retries: not the fault of the item being written. Nothing was
    recorded for that item, and the work can be resumed once the store is back (the
    server up again, space freed)."""


class BlobStoreUnavailable(StoreUnavailable):
    """The blob store could not be reached or written (S3 down after its retries, the
    local disk full or failing)."""


class CatalogUnavailable(StoreUnavailable):
    """The catalog database could not be reached or written (connection lost, server
    down, disk full) for longer than the writer's retries."""
