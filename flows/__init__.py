"""Prefect flows: crawl → dream → record, operable from the Prefect UI.

Importing this package changes nothing in the process: the entry points (the
``dreamcrawl`` command, the test suite) set Prefect's safe defaults first with
:func:`pipeline.cli.prefect_defaults`.
"""
