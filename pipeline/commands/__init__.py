"""One module per ``dreamcrawl`` subcommand: ``NAME``, a docstring whose first line is the
command's help, ``add_arguments(parser)`` and ``run(args)`` (pipeline/cli.py builds the
parser from them)."""
