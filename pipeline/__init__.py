"""dreamcrawl's glue: settings, the command line, logging and the demo."""

__version__ = "0.1.0"
