"""The blob store on S3-compatible object storage (``DREAMCRAWL_BLOBS=s3://bucket/prefix``).

Objects live at ``<prefix>/<first 2 hex>/<remaining 62 hex>`` in the bucket, the same
layout as the local folder. The endpoint and the credentials come from the standard AWS
variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, ...) or the user's AWS config, through boto3 like every S3 tool.

How the local store's promises carry over:

- Never overwritten: every put is conditional (``If-None-Match: *``); a 412 means the
  same bytes are already there. A server that does not implement conditional writes
  gets a HEAD check before the put instead (two racing writers then both write the
  same bytes, since the key is their sha256: one intact object either way).
- Never visible half written: a single PUT carries the object's sha256
  (``x-amz-checksum-sha256``), which the server checks before storing anything; a large
  object is a multipart upload that is completed only after its bytes hashed to the
  key. A killed writer leaves at most an open multipart upload, which
  ``catalog check`` reports and ``--repair`` aborts.
- Durable before the catalog row: a completed PUT is durable, so :meth:`sync_dirs` has
  nothing to do.
- Retries: botocore's standard retry mode (5xx, throttling, timeouts, dropped
  connections); what still fails after them raises :class:`BlobStoreUnavailable`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import itertools
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from storage.blobs import CHUNK, KEY_RE, BlobStore, StoredObject, Unfinished, check_key
from storage.errors import BlobStoreUnavailable, UserError

# Objects up to this size go in one PUT; larger ones in parts of this size (S3's
# minimum part is 5 MiB). Crawled images are far below it.
PART_SIZE = 8 << 20
# Objects read back are held in memory up to this size, on disk beyond.
READ_SPOOL = 32 << 20


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` as (bucket, prefix without slashes at either end)."""
    rest = url[len("s3://") :] if url.startswith("s3://") else ""
    bucket, _, prefix = rest.partition("/")
    if len(bucket) < 3:
        raise UserError(f"DREAMCRAWL_BLOBS={url!r}: expected s3://BUCKET[/PREFIX]")
    return bucket, prefix.strip("/")


def _read_full(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes: fewer only at the end of the stream (reads may be short)."""
    data = stream.read(size)
    while data and len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            break
        data += more
    return data


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


class S3BlobStore(BlobStore):
    """Immutable objects by sha256 key in an S3 bucket."""

    def __init__(self, url: str, *, spool_dir: Path | None = None) -> None:
        self.location = url
        self.bucket, self.prefix = parse_url(url)
        self.spool_dir = spool_dir  # where streams of unknown hash are buffered
        self._client: Any = None
        self._lock = threading.Lock()
        self._conditional = True  # cleared if the server rejects If-None-Match
        self.list_page = 1000  # keys per listing request: what a listing holds at once

    def __getstate__(self) -> dict[str, Any]:  # Dask ships stores to other processes
        return {"url": self.location, "spool_dir": self.spool_dir}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], spool_dir=state["spool_dir"])  # type: ignore[misc]

    @property
    def client(self) -> Any:
        """One boto3 client per store (boto3 clients are thread-safe)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    attempts = int(os.environ.get("AWS_MAX_ATTEMPTS", "") or 5)
                    config = Config(
                        retries={"mode": "standard", "max_attempts": attempts},
                        connect_timeout=5,
                        read_timeout=60,
                        max_pool_connections=32,
                    )
                    self._client = boto3.session.Session().client("s3", config=config)
        return self._client

    def name(self, key: str) -> str:
        """The object name of ``key`` in the bucket."""
        check_key(key)
        tail = f"{key[:2]}/{key[2:]}"
        return f"{self.prefix}/{tail}" if self.prefix else tail

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.name(key)}"

    def for_run(self, tmp_dir: Path) -> S3BlobStore:
        return S3BlobStore(self.location, spool_dir=tmp_dir)

    def _call(self, method: str, **kwargs: Any) -> Any:
        """Call the client; network trouble that outlived the retries becomes
        :class:`BlobStoreUnavailable` (ClientError passes through for the caller)."""
        try:
            return getattr(self.client, method)(**kwargs)
        except ClientError as exc:
            if _status(exc) >= 500:
                raise BlobStoreUnavailable(f"{self.describe()}: {exc}") from exc
            raise
        except NoCredentialsError as exc:
            raise UserError(
                f"{self.describe()}: no AWS credentials (set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
            ) from exc
        except BotoCoreError as exc:
            raise BlobStoreUnavailable(f"{self.describe()}: {exc}") from exc

    # -- writing -------------------------------------------------------------

    def put_bytes(self, data: bytes, *, sync_dir: bool = True, key: str | None = None) -> str:
        """Hash in memory, then one conditional PUT (the crawler's path)."""
        actual = hashlib.sha256(data).hexdigest()
        if key is not None and key != actual:
            raise ValueError(f"bytes do not hash to {key}")
        self._upload(actual, io.BytesIO(data))
        return actual

    def put_file(self, source: Path | str, *, sync_dir: bool = True) -> str:
        """Hash the file, then upload it from the file itself (no second copy)."""
        digest = hashlib.sha256()
        with open(source, "rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                digest.update(chunk)
            fh.seek(0)
            key = digest.hexdigest()
            self._upload(key, fh)
        return key

    def put_stream(self, stream: BinaryIO, *, sync_dir: bool = True, key: str | None = None) -> str:
        """With ``key`` known, upload straight from ``stream`` (checked against it before
        the object appears); without, buffer it to learn the key first."""
        if key is not None:
            self._upload(check_key(key), stream)
            return key
        return super().put_stream(stream, sync_dir=sync_dir)

    def put_chunks(
        self, chunks: Iterable[bytes], *, sync_dir: bool = True, key: str | None = None
    ) -> str:
        digest = hashlib.sha256()
        if self.spool_dir is not None:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.SpooledTemporaryFile(PART_SIZE, dir=self.spool_dir) as spool:
            for chunk in chunks:
                digest.update(chunk)
                spool.write(chunk)
            spool.seek(0)
            actual = digest.hexdigest()
            if key is not None and key != actual:
                raise ValueError(f"bytes do not hash to {key}")
            self._upload(actual, spool)  # type: ignore[arg-type]
        return actual

    def _upload(self, key: str, body: BinaryIO) -> None:
        """One PUT if the bytes fit in a part, else a multipart upload."""
        if not self._conditional and self.exists(key):
            return
        first = _read_full(body, PART_SIZE)
        second = b"" if len(first) < PART_SIZE else _read_full(body, PART_SIZE)
        if not second:
            self._put_one(key, first)
        elif not self.exists(key):  # a HEAD costs less than uploading the parts again
            self._put_parts(key, [first, second], body)

    def _put_one(self, key: str, data: bytes) -> None:
        # The key is the sha256: the server refuses a body that does not match it.
        checksum = base64.b64encode(bytes.fromhex(key)).decode()
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.name(key),
            "Body": data,
            "ChecksumSHA256": checksum,
        }
        try:
            self._conditional_write("put_object", key, args)
        except ClientError as exc:
            if _code(exc) in ("BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest"):
                raise ValueError(f"bytes do not hash to {key}") from exc
            raise

    def _conditional_write(self, method: str, key: str, args: dict[str, Any]) -> bool:
        """Write with ``If-None-Match: *``; False if the object was already there (with
        the same bytes, since they hash to its key)."""
        for _ in range(5):
            try:
                if self._conditional:
                    self._call(method, **args, IfNoneMatch="*")
                else:
                    self._call(method, **args)
                return True
            except ClientError as exc:
                code = _code(exc)
                if code == "PreconditionFailed" or _status(exc) == 412:
                    return False  # already stored: objects are never overwritten
                if code == "ConditionalRequestConflict" or _status(exc) == 409:
                    time.sleep(0.2)  # another writer of the same key is finishing
                    continue
                if code == "NotImplemented" and self._conditional:
                    self._conditional = False  # fall back to a HEAD check
                    if self.exists(key):
                        return False
                    continue
                raise
        raise BlobStoreUnavailable(f"{self.describe()}: kept conflicting on {key}")

    def _put_parts(self, key: str, first: list[bytes], body: BinaryIO) -> None:
        """A multipart upload, completed only if the bytes hash to ``key``."""
        name = self.name(key)
        upload = self._call("create_multipart_upload", Bucket=self.bucket, Key=name)
        upload_id = upload["UploadId"]
        digest = hashlib.sha256()
        parts: list[dict[str, Any]] = []
        try:
            for data in itertools.chain(first, iter(lambda: _read_full(body, PART_SIZE), b"")):
                digest.update(data)
                done = self._call(
                    "upload_part",
                    Bucket=self.bucket,
                    Key=name,
                    UploadId=upload_id,
                    PartNumber=len(parts) + 1,
                    Body=data,
                )
                parts.append({"ETag": done["ETag"], "PartNumber": len(parts) + 1})
            if digest.hexdigest() != key:
                raise ValueError(f"bytes do not hash to {key}")
            args = {
                "Bucket": self.bucket,
                "Key": name,
                "UploadId": upload_id,
                "MultipartUpload": {"Parts": parts},
            }
            if not self._conditional_write("complete_multipart_upload", key, args):
                raise FileExistsError(key)  # another writer finished first: drop ours
        except FileExistsError:
            self._abort(name, upload_id)
        except BaseException:
            self._abort(name, upload_id)
            raise

    def _abort(self, name: str, upload_id: str) -> None:
        # If this fails too, catalog check finds the upload and aborts it.
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)

    # -- reading -------------------------------------------------------------

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self._call("head_object", Bucket=self.bucket, Key=self.name(key))  # type: ignore[no-any-return]
        except ClientError as exc:
            if _status(exc) == 404 or _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def size(self, key: str) -> int:
        head = self._head(key)
        if head is None:
            raise FileNotFoundError(f"{self.describe()}: no object {key}")
        return int(head["ContentLength"])

    def open(self, key: str) -> BinaryIO:
        try:
            got = self._call("get_object", Bucket=self.bucket, Key=self.name(key))
        except ClientError as exc:
            if _status(exc) == 404 or _code(exc) == "NoSuchKey":
                raise FileNotFoundError(f"{self.describe()}: no object {key}") from exc
            raise
        body = got["Body"]
        try:
            if int(got.get("ContentLength", 0)) <= READ_SPOOL:
                return io.BytesIO(body.read())
            spool = tempfile.TemporaryFile(dir=self.spool_dir)  # noqa: SIM115 (returned)
            for chunk in iter(lambda: body.read(CHUNK), b""):
                spool.write(chunk)
            spool.seek(0)
            return spool  # type: ignore[return-value]
        except BotoCoreError as exc:
            raise BlobStoreUnavailable(f"{self.describe()}: {exc}") from exc
        finally:
            body.close()

    def _pages(self, method: str, result: str) -> Iterator[dict[str, Any]]:
        prefix = f"{self.prefix}/" if self.prefix else ""
        paginator = self.client.get_paginator(method)
        pages = paginator.paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": self.list_page}
        )
        try:
            for page in pages:
                yield from page.get(result, [])
        except BotoCoreError as exc:
            raise BlobStoreUnavailable(f"{self.describe()}: {exc}") from exc

    def list_objects(self) -> Iterator[StoredObject]:
        skip = len(self.prefix) + 1 if self.prefix else 0
        for item in self._pages("list_objects_v2", "Contents"):
            key = item["Key"][skip:].replace("/", "", 1)
            if KEY_RE.match(key) and item["Key"] == self.name(key):
                yield StoredObject(key, int(item["Size"]), item["LastModified"].timestamp())

    def unfinished(self) -> list[Unfinished]:
        return [
            Unfinished(
                f"{item['Key']}?uploadId={item['UploadId']}",
                item["Initiated"].timestamp(),
                f"unfinished upload of {item['Key']}",
            )
            for item in self._pages("list_multipart_uploads", "Uploads")
        ]

    # -- maintenance ----------------------------------------------------------

    def delete(self, key: str) -> None:
        self._call("delete_object", Bucket=self.bucket, Key=self.name(key))

    def discard(self, item: Unfinished) -> None:
        name, upload_id = item.ident.rsplit("?uploadId=", 1)
        self._call("abort_multipart_upload", Bucket=self.bucket, Key=name, UploadId=upload_id)

    def preflight(self, *, write: bool = True) -> None:
        """Fail early, with one clear line, if the bucket cannot be used: endpoint
        unreachable, no or wrong credentials, no bucket, writes refused."""
        where = f"{self.describe()} at {self.client.meta.endpoint_url}"
        try:
            self._call("head_bucket", Bucket=self.bucket)
        except BlobStoreUnavailable as exc:
            raise UserError(f"cannot reach the S3 endpoint for {where}: {exc.__cause__}") from exc
        except ClientError as exc:
            status = _status(exc)
            if status == 404:
                raise UserError(f"no such bucket: {where} (create it first)") from exc
            if status in (401, 403):
                raise UserError(
                    f"access to {where} denied: check AWS_ACCESS_KEY_ID / "
                    "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
                ) from exc
            raise UserError(f"cannot use {where}: {exc}") from exc
        if not write:
            return
        probe = f"{self.prefix}/.preflight-{uuid.uuid4().hex}".lstrip("/")
        try:
            self._call("put_object", Bucket=self.bucket, Key=probe, Body=b"")
        except (ClientError, BlobStoreUnavailable) as exc:
            raise UserError(f"writes to {where} are refused: {exc}") from exc
        with contextlib.suppress(ClientError, BlobStoreUnavailable):
            self._call("delete_object", Bucket=self.bucket, Key=probe)  # else: listings skip it
