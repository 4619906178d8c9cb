"""Bundles on object storage: push a bundle to ``s3://bucket/prefix/NAME``, pull it back, read it directly.

A remote bundle is the bundle folder's files (``metadata.parquet``, ``data/index.sqlite`` and the
Parquet partition files it lists) plus ``manifest.json`` with every file's size and xxh3 checksum.
The manifest is uploaded last, so a half-finished push is never seen as a bundle. ``pull_bundle``
verifies every checksum in a temporary folder and renames it into place; ``RemoteBundleDataSource``
fetches a symbol's files on first use into a private mirror, checking each one. Credentials and the
endpoint come in ``storage_options`` (a ``Workspace`` builds them) and never appear in messages.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
from filelock import FileLock

from .._time import TimeLike
from ..errors import BacktapeError, ConfigError, CorruptCacheError, NoDataError
from ..sources.base import DataSource, DataSourceMetadata
from ..timeframes import Timeframe
from .bundles import BundleDataSource, BundleMetadata, _folder, metadata_digest
from .index import CoverageIndex
from .store import file_checksum

MANIFEST = "manifest.json"
FORMAT = 1
INDEX = "data/index.sqlite"
#: objects moved at once by a push, a pull or a direct read
TRANSFERS = 8
T = TypeVar("T")
R = TypeVar("R")


class ObjectStoreError(BacktapeError):
    """Object storage refused or could not be reached (no bucket, no bundle, access denied, no endpoint)."""


@dataclass(frozen=True)
class RemoteFile:
    """One object of a remote bundle: path relative to the bundle, size and xxh3 checksum."""

    path: str
    size: int
    checksum: str


@dataclass(frozen=True)
class Manifest:
    """What a remote bundle holds; written last by a push."""

    name: str
    files: tuple[RemoteFile, ...]
    metadata: dict[str, Any]

    def to_json(self) -> bytes:
        return json.dumps({"format": FORMAT, "name": self.name, "metadata": self.metadata,
                           "files": [vars(f) for f in self.files]}, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes, url: str) -> Manifest:
        try:
            doc = json.loads(raw)
            return cls(doc["name"], tuple(RemoteFile(f["path"], int(f["size"]), f["checksum"])
                                          for f in doc["files"]), doc.get("metadata", {}))
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptCacheError(f"remote bundle {url}: {MANIFEST} is unreadable ({type(exc).__name__}); "
                                    "push the bundle again", []) from exc


class _Remote:
    """A bundle location ``s3://bucket/prefix/NAME`` on a pyarrow S3 filesystem, errors made one line."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None) -> None:
        scheme, sep, rest = url.partition("://")
        if scheme.lower() != "s3" or not sep or not rest.split("/", 1)[0]:
            raise ConfigError(f"object storage URL {url!r}: use s3://bucket/prefix/NAME")
        self.url = url.rstrip("/")
        self.bucket = rest.split("/", 1)[0]
        self.path = rest.strip("/")
        self.options = dict(storage_options or {})
        self._secrets = [str(v) for k, v in self.options.items()
                         if k in ("secret_key", "session_token") and v]
        self.fs = _filesystem(self.options)

    def child(self, name: str) -> _Remote:
        return _Remote(f"{self.url}/{name}", self.options)

    def read(self, rel: str) -> bytes:
        return self._call(lambda: _read_all(self.fs, f"{self.path}/{rel}"), rel)

    def write(self, rel: str, data: bytes) -> None:
        def put() -> None:
            with self.fs.open_output_stream(f"{self.path}/{rel}") as out:
                out.write(data)
        self._call(put, rel)

    def delete(self, rel: str) -> None:
        self._call(lambda: self.fs.delete_file(f"{self.path}/{rel}"), rel)

    def exists(self, rel: str) -> bool:
        from pyarrow.fs import FileType

        info = self._call(lambda: self.fs.get_file_info(f"{self.path}/{rel}"), rel)
        return bool(info.type == FileType.File)

    def _call(self, action: Callable[[], Any], rel: str) -> Any:
        """Run ``action``; any storage failure becomes one ``ObjectStoreError`` line without secrets."""
        try:
            return action()
        except FileNotFoundError as exc:
            what = f"{self.url}/{rel}"
            if "bucket" in str(exc).lower():
                raise ObjectStoreError(f"no bucket {self.bucket!r} at {self._endpoint()}; create it "
                                       "or check the URL") from None
            raise NoDataError(f"no remote bundle at {self.url} ({what} does not exist)") from None
        except OSError as exc:
            raise ObjectStoreError(self._explain(str(exc), rel)) from None

    def _explain(self, text: str, rel: str) -> str:
        low = text.lower()
        where = f"{self.url}/{rel}"
        if "no_such_bucket" in low or "nosuchbucket" in low or "bucket does not exist" in low:
            return f"no bucket {self.bucket!r} at {self._endpoint()}; create it or check the URL"
        if "access_denied" in low or "accessdenied" in low or "forbidden" in low or "signature" in low \
                or "invalidaccesskeyid" in low or "403" in low:
            return (f"access denied to {where}; check the credentials (AWS_ACCESS_KEY_ID / "
                    "AWS_SECRET_ACCESS_KEY) and the bucket's permissions")
        if "curl" in low or "connect" in low or "network" in low or "resolve" in low or "timed out" in low:
            return f"object storage endpoint {self._endpoint()} is unreachable; check the endpoint URL"
        reason = " ".join(text.split())[:160]
        for secret in self._secrets:
            reason = reason.replace(secret, "***")
        return f"object storage error on {where}: {reason}"

    def _endpoint(self) -> str:
        return str(self.options.get("endpoint_override") or "AWS S3")


def _filesystem(options: Mapping[str, Any]) -> Any:
    """A pyarrow ``S3FileSystem`` from ``storage_options`` (one attempt, short timeouts off AWS)."""
    from pyarrow import fs

    opts = dict(options)
    endpoint = opts.pop("endpoint_override", None)
    kwargs: dict[str, Any] = {k: v for k, v in opts.items() if v is not None}
    if endpoint:
        scheme, sep, host = str(endpoint).partition("://")
        kwargs["endpoint_override"] = host if sep else scheme
        kwargs["scheme"] = scheme if sep else "https"
        kwargs.setdefault("connect_timeout", 5.0)
        kwargs.setdefault("request_timeout", 30.0)
        kwargs.setdefault("retry_strategy", fs.AwsStandardS3RetryStrategy(max_attempts=1))
        kwargs.setdefault("region", "us-east-1")
    try:
        return fs.S3FileSystem(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"object storage options: {type(exc).__name__} (use access_key, secret_key, "
                          "session_token, region, endpoint_override)") from None


def _read_all(filesystem: Any, path: str) -> bytes:
    with filesystem.open_input_stream(path) as fh:
        return bytes(fh.read())


def push_bundle(name: str, url: str, *, bundles_dir: str | Path | None = None,
                storage_options: Mapping[str, Any] | None = None, replace: bool = False,
                progress: Callable[[int, int], None] | None = None) -> Manifest:
    """Upload bundle ``name`` to ``url/name``; the manifest goes last, so a failed push leaves no bundle.

    An existing remote bundle is refused unless ``replace``: then its manifest is removed first.
    """
    meta = BundleMetadata.load(name, bundles_dir)
    remote = _Remote(url, storage_options).child(name)
    if remote.exists(MANIFEST):
        if not replace:
            raise ConfigError(f"{remote.url} already holds a bundle; push with --replace to overwrite it")
        remote.delete(MANIFEST)
    with tempfile.TemporaryDirectory(prefix="backtape-push-") as tmp:
        with FileLock(meta.path / ".ingest.lock"):  # a consistent index and metadata
            snapshot = Path(tmp) / "index.sqlite"
            _copy_sqlite(meta.path / INDEX, snapshot)
            metadata_bytes = (meta.path / "metadata.parquet").read_bytes()
        index = CoverageIndex(snapshot)
        try:
            expected = {f"data/{f.path}": f.checksum for f in index.all_files()}
        finally:
            index.close()
        uploads = [(rel, meta.path / rel) for rel in sorted(expected)] + [(INDEX, snapshot)]

        def upload(item: tuple[str, Path]) -> RemoteFile:
            rel, local = item
            try:
                data = local.read_bytes()
            except FileNotFoundError:
                data = b""
            checksum = file_checksum(data)
            if expected.get(rel, checksum) not in ("", checksum):  # never spread local damage
                raise CorruptCacheError(f"bundle {name!r}: {local} fails its checksum; run backtape bundles "
                                        f"verify {name} and ingest the damaged symbols again", [])
            remote.write(rel, data)
            return RemoteFile(rel, len(data), checksum)

        files = _parallel(upload, uploads, progress)
        remote.write("metadata.parquet", metadata_bytes)
        files.append(RemoteFile("metadata.parquet", len(metadata_bytes), file_checksum(metadata_bytes)))
    summary = {"symbols": list(meta.symbols), "frequency": meta.frequency, "rows": meta.row_count,
               "start": meta.start.isoformat(), "end": meta.end.isoformat(),
               "source_type": meta.source_type}
    manifest = Manifest(name, tuple(files), summary)
    remote.write(MANIFEST, manifest.to_json())
    if progress is not None:
        progress(len(files), len(files))
    return manifest


def pull_bundle(url: str, *, bundles_dir: str | Path | None = None, name: str | None = None,
                storage_options: Mapping[str, Any] | None = None,
                progress: Callable[[int, int], None] | None = None) -> BundleMetadata:
    """Download the bundle at ``url`` as ``name`` (default: its own); every checksum is verified in a
    temporary folder that is renamed into place, so a failed pull leaves nothing behind."""
    remote = _Remote(url, storage_options)
    manifest = Manifest.from_json(remote.read(MANIFEST), remote.url)
    target_name = name or manifest.name
    target = _folder(target_name, bundles_dir)
    if target.exists():
        raise ConfigError(f"bundle {target_name!r} already exists in {target.parent}; pull with "
                          "--name NEW or delete it first")
    staging = target.parent / ".partial" / uuid.uuid4().hex
    try:
        staging.mkdir(parents=True)
        _parallel(lambda f: _fetch(remote, f, staging), list(manifest.files), progress)
        if target_name != manifest.name:
            path = staging / "metadata.parquet"
            renamed = pl.read_parquet(path).drop("checksum", strict=False)
            renamed = renamed.with_columns(name=pl.lit(target_name))
            renamed.with_columns(pl.lit(metadata_digest(renamed)).alias("checksum")).write_parquet(path)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if staging.parent.exists() and not any(staging.parent.iterdir()):
            staging.parent.rmdir()
    return BundleMetadata.load(target_name, target.parent)


def _parallel(action: Callable[[T], R], items: list[T],
              progress: Callable[[int, int], None] | None = None) -> list[R]:
    """``action`` of every item on a few threads, in order; the first failure cancels the rest."""
    results: list[R] = []
    pool = ThreadPoolExecutor(max_workers=TRANSFERS)
    try:
        for i, result in enumerate(pool.map(action, items), 1):
            results.append(result)
            if progress is not None:
                progress(i, len(items))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results


def _fetch(remote: _Remote, f: RemoteFile, root: Path) -> None:
    """Download one object into ``root``, refusing it when its checksum is not the manifest's."""
    data = remote.read(f.path)
    if len(data) != f.size or file_checksum(data) != f.checksum:
        raise CorruptCacheError(f"remote bundle {remote.url}: {f.path} fails its checksum (damaged in "
                                "storage or in transit); push the bundle again", [])
    local = root / f.path
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(data)


def _copy_sqlite(src: Path, dst: Path) -> None:
    """A consistent copy of a live SQLite database (the backup API)."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    b.close()
    a.close()


class RemoteBundleDataSource(DataSource):
    """A bundle read straight from ``s3://bucket/prefix/NAME``.

    The manifest, metadata and index are read when it is built; each symbol's files are downloaded
    the first time it is asked for, checked against the manifest, into a private temporary mirror.

    >>> src = RemoteBundleDataSource("s3://bars/daily/demo", storage_options={...})  # doctest: +SKIP
    """

    name = "bundle"
    remote = False  # a pushed bundle is a snapshot: it never goes stale

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self._remote = _Remote(url, storage_options)
        self.url = self._remote.url
        self.manifest = Manifest.from_json(self._remote.read(MANIFEST), self.url)
        self._files = {f.path: f for f in self.manifest.files}
        mirror = Path(tempfile.mkdtemp(prefix="backtape-remote-bundle-"))
        self._finalizer = weakref.finalize(self, shutil.rmtree, mirror, True)
        self._root = mirror / self.manifest.name
        for rel in ("metadata.parquet", INDEX):
            if rel not in self._files:
                raise CorruptCacheError(f"remote bundle {self.url}: {MANIFEST} lists no {rel}; push the "
                                        "bundle again", [])
            _fetch(self._remote, self._files[rel], self._root)
        index = CoverageIndex(self._root / INDEX)
        try:
            self._by_symbol: dict[str, list[str]] = {}
            for entry in index.all_files():
                self._by_symbol.setdefault(entry.key.symbol, []).append(f"data/{entry.path}")
        finally:
            index.close()
        self._local = BundleDataSource(self.manifest.name, mirror)
        self.metadata = self._local.metadata
        self._have: set[str] = set()
        self._lock = threading.Lock()

    def _ensure(self, symbols: list[str]) -> None:
        with self._lock:
            for sym in symbols:
                if sym in self._have:
                    continue
                rels = self._by_symbol.get(sym, [])
                unknown = [rel for rel in rels if rel not in self._files]
                if unknown:
                    raise CorruptCacheError(f"remote bundle {self.url}: {unknown[0]} is not in the "
                                            "manifest; push the bundle again", [])
                _parallel(lambda rel: _fetch(self._remote, self._files[rel], self._root), rels)
                self._have.add(sym)

    async def fetch(self, symbols: list[str], start: TimeLike, end: TimeLike,
                    frequency: str | Timeframe = "1d") -> pl.DataFrame:
        """Bars of ``symbols`` in ``[start, end)``, their files downloaded and verified on first use."""
        import asyncio

        wanted = [symbols] if isinstance(symbols, str) else list(symbols)
        await asyncio.to_thread(self._ensure, [s for s in wanted if s in self.metadata.symbols])
        return await self._local.fetch(wanted, start, end, frequency)

    def cache_identity(self) -> str:
        return f"bundle:{self.url}"

    def get_metadata(self) -> DataSourceMetadata:
        meta = self._local.get_metadata()
        return replace(meta, details={**meta.details, "path": self.url})

    def close(self) -> None:
        """Delete the local mirror now (it is deleted when the source is garbage-collected anyway)."""
        self._finalizer()
