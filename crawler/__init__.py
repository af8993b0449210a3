"""The keyword image crawler: a Scrapy project plus the user's own files.

``crawl(keywords, start_urls=…)`` is the one call for a notebook; ``run_crawl`` (a
:class:`CrawlRequest`) and ``import_paths`` are the entry points of the CLI and the
flows. The Scrapy parts are ``crawler.spiders``, ``crawler.items``,
``crawler.pipelines``, ``crawler.middlewares`` and ``crawler.settings``. Importing this
package does not import Scrapy: the crawl itself runs in its own process.
"""

from crawler.api import CrawlRequest, CrawlResult, crawl, import_paths, run_crawl

__all__ = ["CrawlRequest", "CrawlResult", "crawl", "import_paths", "run_crawl"]
