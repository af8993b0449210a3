"""``-s NAME=value`` settings overrides for a crawl: names and values checked up front.

A typo fails here with one line (exit 2 on the CLI), before a run row is written,
rather than in the crawler process afterwards.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from storage.errors import UserError

SETTING_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def parse_overrides(pairs: Iterable[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """``["NAME=value", …]`` → ``{NAME: value}``, refusing names no component reads."""
    if not pairs:
        return {}
    items = pairs.items() if isinstance(pairs, Mapping) else (_split(p) for p in pairs)
    from scrapy.settings import default_settings

    import crawler.settings as ours

    overrides = {}
    for name, value in items:
        if not SETTING_NAME.match(name):
            raise UserError(f"setting names are UPPER_CASE, got {name!r} (use -s NAME=value)")
        if not (hasattr(default_settings, name) or hasattr(ours, name)):
            raise UserError(
                f"unknown setting {name!r}: docs/crawler.md lists the DREAMCRAWL_* settings, "
                "and Scrapy's documentation its own"
            )
        default = getattr(ours, name, getattr(default_settings, name, None))
        overrides[name] = _typed(name, value, default)
        _check_list(name, overrides[name])
    return overrides


def _check_list(name: str, value: Any) -> None:
    """Settings whose items have a form of their own, checked here like the numbers."""
    from crawler.addresses import parse_nameservers, parse_networks

    parse = {
        "DREAMCRAWL_ALLOWED_NETWORKS": parse_networks,
        "DREAMCRAWL_DNS_SERVERS": parse_nameservers,
    }.get(name)
    if parse is None:
        return
    try:
        parse(value.split(",") if isinstance(value, str) else list(value))
    except (TypeError, ValueError) as exc:
        raise UserError(f"-s {name}: {exc}") from None


BOOLEANS = {"1": True, "true": True, "yes": True, "on": True,
            "0": False, "false": False, "no": False, "off": False}  # fmt: skip


def _typed(name: str, value: Any, default: Any) -> Any:
    """``value`` checked against the type of the setting's default (a typo fails here, with
    one line, rather than in the crawler process after its run row was written)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if isinstance(default, bool):
        if text.lower() not in BOOLEANS:
            raise UserError(f"-s {name} takes true or false, got {value!r}")
        return BOOLEANS[text.lower()]
    if isinstance(default, int | float):
        try:
            number = int(text) if isinstance(default, int) else float(text)
        except ValueError:
            kind = "an integer" if isinstance(default, int) else "a number"
            raise UserError(f"-s {name} takes {kind}, got {value!r}") from None
        if not math.isfinite(number):
            raise UserError(f"-s {name} takes a finite number, got {value!r}")
        return number
    return value


def _split(pair: str) -> tuple[str, str]:
    name, sep, value = pair.partition("=")
    if not sep:
        raise UserError(f"-s takes NAME=value, got {pair!r}")
    return name.strip(), value
