"""dreamcrawl's version, read from the installed distribution's metadata.

It lives at the bottom so every layer (the crawler's user agent, the lineage's code
version, the CLI's ``--version``) reads the same value without importing a layer above.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dreamcrawl")
except PackageNotFoundError:  # a checkout used without ``pip install -e .``
    __version__ = "0.0.0+unknown"
