"""Scrapy settings of the dreamcrawl crawler.

One flat module, as in Scrapy's own ``default_settings``: our options are prefixed
``DREAMCRAWL_``, grouped, each group's switch first. Anything here (ours or Scrapy's)
can be overridden for one crawl with ``dreamcrawl crawl -s NAME=value``; docs/crawler.md
lists the ones worth knowing.
"""

from scrapy.settings import default_settings

from storage.version import __version__
from stylize.limits import MAX_PIXELS

BOT_NAME = "dreamcrawl"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# -- politeness ---------------------------------------------------------------------
USER_AGENT = (
    f"dreamcrawl/{__version__} (+https://github.com/dreamcrawl/dreamcrawl; "
    "keyword image crawler for DeepDream art)"
)
ROBOTSTXT_OBEY = True
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.5
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 4.0
CONCURRENT_REQUESTS = 32
CONCURRENT_REQUESTS_PER_DOMAIN = 8
COOKIES_ENABLED = False

# -- safety -------------------------------------------------------------------------
DOWNLOAD_TIMEOUT = 30
DNS_TIMEOUT = 10
REDIRECT_MAX_TIMES = 5
RETRY_TIMES = 2
# A page or an image larger than this is abandoned while it streams in (too-large).
DOWNLOAD_MAXSIZE = 32 * 1024 * 1024
DOWNLOAD_WARNSIZE = 0
METAREFRESH_ENABLED = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False

# Loopback, private, link-local and reserved addresses are refused unless allowed.
DREAMCRAWL_ALLOW_PRIVATE = False
# Non-public networks fetched all the same (CIDR, e.g. "10.1.0.0/16": an intranet).
DREAMCRAWL_ALLOWED_NETWORKS: list[str] = []
# Each host is resolved once per crawl process, checked, and connected to only at the
# addresses checked (crawler/resolver.py). Nameservers ("host:port") to ask instead of
# the system resolver, A records only: for tests, or a resolver you trust.
TWISTED_DNS_RESOLVER = "crawler.resolver.GuardedResolver"
DREAMCRAWL_DNS_SERVERS: list[str] = []
# Extra domains a crawl may visit besides those of its start URLs / source.
DREAMCRAWL_ALLOWED_DOMAINS: list[str] = []

# -- what the site spider looks for ---------------------------------------------------
DREAMCRAWL_DEPTH = 2
DREAMCRAWL_MAX_IMAGES = 0  # 0: no limit
# Images whose relevance to the keywords is below this are not downloaded (irrelevant).
DREAMCRAWL_MIN_RELEVANCE = 0.01
# Characters of surrounding text read around an image for keyword matches.
DREAMCRAWL_NEARBY_TEXT_CHARS = 300
DREAMCRAWL_IMAGE_EXTENSIONS = [
    "jpg",
    "jpeg",
    "png",
    "gif",
    "webp",
    "bmp",
    "tif",
    "tiff",
    "svg",
    "avif",
]

# -- validation -----------------------------------------------------------------------
DREAMCRAWL_MIN_WIDTH = 64
DREAMCRAWL_MIN_HEIGHT = 64
# Decoded pixels above which a file is refused as a decompression bomb: the size
# policy shared with the dreams (stylize/limits.py).
DREAMCRAWL_MAX_PIXELS = MAX_PIXELS
DREAMCRAWL_FORMATS = ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "MPO"]
# Perceptual near-duplicates: Hamming distance of the 64-bit pHash, and what to do.
DREAMCRAWL_NEAR_DUPLICATE_DISTANCE = 6
DREAMCRAWL_NEAR_DUPLICATES = "keep"  # keep (flagged) | skip (rejected)

# -- labels (docs/crawler.md#labels) -------------------------------------------------
# Label every new image with its top-5 ImageNet classes, on a thread of its own, when
# the labeller's weights are there ('dreamcrawl weights fetch --labeller').
DREAMCRAWL_LABELS = True
# Keep an image only if one of its top-k labels falls under a keyword its text matched.
DREAMCRAWL_CONTENT_CHECK = False
DREAMCRAWL_CONTENT_TOP_K = 5

# -- search sources -----------------------------------------------------------------
DREAMCRAWL_SEARCH_LIMIT = 50  # results asked from a source per keyword
DREAMCRAWL_COMMONS_API_URL = "https://commons.wikimedia.org/w/api.php"
DREAMCRAWL_COMMONS_MEDIA_DOMAINS = ["upload.wikimedia.org"]

# -- plumbing -------------------------------------------------------------------------
# Ours are in the *_BASE settings, which Scrapy merges with ITEM_PIPELINES and
# EXTENSIONS: a project or `-s ITEM_PIPELINES='{"mymodule.MyPipeline": 400}'` adds its
# own without re-listing ours (and can switch one of ours off with None).
ITEM_PIPELINES_BASE = {
    "crawler.pipelines.CatalogPipeline": 300,
}
EXTENSIONS_BASE = {
    **default_settings.EXTENSIONS_BASE,
    # A plain `scrapy crawl` records its own crawl run (crawler/standalone.py).
    "crawler.standalone.StandaloneRun": 0,
    # The crawl's counters on stderr every few seconds, for the process that started it.
    "crawler.progress.Progress": 500,
}
DREAMCRAWL_PROGRESS_INTERVAL = 5.0
# Items of one response processed at once. Scrapy (2.13 and later) starts this many
# asyncio tasks for every response's output; an image response has one item, a page a
# few dozen requests and rejections, so its default of 100 only costs reactor time.
CONCURRENT_ITEMS = 8
DOWNLOADER_MIDDLEWARES = {
    # Ours replaces Scrapy's offsite filter: it records a rejection instead of dropping.
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "crawler.middlewares.GuardMiddleware": 50,
    "crawler.middlewares.XRobotsTagMiddleware": 560,
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "crawler.middlewares.GuardedRedirectMiddleware": 600,
}
LOG_LEVEL = "INFO"
STATS_DUMP = True
