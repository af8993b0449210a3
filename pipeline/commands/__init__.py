"""One module per ``dreamcrawl`` subcommand: ``register(subparsers)`` and ``run(args)``."""
