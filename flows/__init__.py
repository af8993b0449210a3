"""Prefect flows: crawl → dream → record, operable from the Prefect UI.

Importing this package sets Prefect's safe defaults first: no telemetry (the machines
this runs on may have no internet) and a start-up timeout that suits 2-core machines.
"""

import os

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
