"""Open the blob store the settings name: S3 for ``DREAMCRAWL_BLOBS=s3://…``, else the
local folder (``objects/`` in the data folder unless DREAMCRAWL_BLOBS names another)."""

from __future__ import annotations

from storage.blobs import BlobStore, LocalBlobStore
from storage.settings import Settings, get_settings


def open_blob_store(settings: Settings) -> BlobStore:
    """The blob store of ``settings`` (nothing is contacted until it is used)."""
    url = settings.blobs_url
    if url is None:
        return LocalBlobStore(settings.objects_dir)
    from storage.s3blobs import S3BlobStore  # boto3 is imported only when S3 is used

    return S3BlobStore(url)


def preflight(settings: Settings | None = None, *, write: bool = True) -> None:
    """Raise :class:`storage.errors.UserError` (one clear line) if the configured store
    cannot be reached, read or (with ``write``) written: the CLI calls it before a
    crawl or a dream starts, so nothing begins that could not be recorded."""
    open_blob_store(settings or get_settings()).preflight(write=write)
