"""The stylizer's own error for input that is the user's to fix.

:mod:`stylize` is a ground layer: it imports nothing of dreamcrawl's other packages, so
it cannot raise :class:`storage.errors.StylizeError`. Callers above both grounds treat a
:class:`StylizeError` exactly like a ``StylizeError``: one line, exit code 2 on the CLI, one
line in the Prefect UI.
"""


class StylizeError(ValueError):
    """A bad dream parameter, image or weights file: the message says what is accepted."""
