"""Rejection reasons: the vocabulary of ``rejections.reason`` (docs/crawler.md)."""

from __future__ import annotations

TOO_SMALL = "too-small"
TOO_LARGE = "too-large"
NOT_IMAGE = "not-image"
UNSUPPORTED_FORMAT = "unsupported-format"
TRUNCATED = "truncated"
CORRUPT = "corrupt"
BOMB = "bomb"
ROBOTS = "robots"
X_ROBOTS_TAG = "x-robots-tag"
TIMEOUT = "timeout"
REDIRECT_LOOP = "redirect-loop"
TOO_MANY_REDIRECTS = "too-many-redirects"
OFF_DOMAIN = "off-domain"
PRIVATE_ADDRESS = "private-address"
UNSUPPORTED_SCHEME = "unsupported-scheme"
CONNECTION = "connection"
IRRELEVANT = "irrelevant"
NEAR_DUPLICATE = "near-duplicate"
CONTENT_MISMATCH = "content-mismatch"  # --content-check: no top label under its keywords
NOT_REGULAR_FILE = "not-regular-file"
UNREADABLE = "unreadable"
ERROR = "error"


def http_status(status: int) -> str:
    """``http-404``, ``http-500``…: the server answered with an error status."""
    return f"http-{status}"
