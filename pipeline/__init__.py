"""The roof: the ``dreamcrawl`` command line, its tables, the gallery and the demo.

Nothing imports this package; it imports every layer below it.
"""

from storage.version import __version__

__all__ = ["__version__"]
