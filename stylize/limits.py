"""How large an image dreamcrawl takes: one size policy for the crawler and the dreams.

- :data:`MAX_PIXELS` is the ceiling for anything decoded at all. The crawler and
  ``import`` refuse larger images as ``bomb`` (``DREAMCRAWL_MAX_PIXELS`` lowers it for a
  crawl); ``dreamcrawl dream`` refuses a larger input file with one line. 64 MP keeps
  every real camera photo and stops decompression bombs before they expand.
- :data:`DREAM_MAX_PIXELS` is the default budget of one dream (the ``max_pixels`` dream
  parameter: ``--max-pixels`` on the CLI, a field of the flows' form): an image above it
  is downscaled to fit with ``fit`` (``--fit``), or refused with one line. A step costs
  time and memory in proportion to the pixels (docs/engine.md): 4 MP (2048×2048) is
  about 3 s a step on 2 CPU cores, where the 64 MP ceiling would be close to a minute.

It lives in the stylizer's ground so that the crawler (which may import it) and the
dreams share it. A budget is always at most the ceiling, and at least :data:`MIN_DREAM_PIXELS` (the
75×75 px InceptionV3 needs).
"""

from __future__ import annotations

from stylize.errors import StylizeError

MAX_PIXELS = 64_000_000
DREAM_MAX_PIXELS = 2048 * 2048
MIN_DREAM_PIXELS = 75 * 75


def check_dream_budget(max_pixels: int) -> int:
    """``max_pixels`` if it is a usable dream budget, else :class:`StylizeError`."""
    if not MIN_DREAM_PIXELS <= max_pixels <= MAX_PIXELS:
        raise StylizeError(
            f"--max-pixels must be between {MIN_DREAM_PIXELS} (75×75) and {MAX_PIXELS} "
            f"(the decode ceiling), got {max_pixels}"
        )
    return max_pixels
