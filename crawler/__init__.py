"""The keyword image crawler: a Scrapy project plus the user's own files.

``run_crawl`` and ``import_paths`` are the entry points (CLI and flows); the Scrapy
parts are ``crawler.spiders``, ``crawler.items``, ``crawler.pipelines``,
``crawler.middlewares`` and ``crawler.settings``. Importing this package does not import
Scrapy: the crawl itself runs in its own process.
"""

from crawler.api import CrawlResult, import_paths, run_crawl

__all__ = ["CrawlResult", "import_paths", "run_crawl"]
