"""Headless Chromium as the tests (and scripts/ui_screenshots.py) start it.

As root, with no sandbox, no GPU and none of the background connections that this
machine's closed network refuses (they would fail at every start).
"""

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
