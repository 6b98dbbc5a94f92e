"""Where the lake's bytes live: a local directory (``LocalStore``) or an object store (``ObjectStore``,
``s3://bucket/prefix``, through pyarrow's S3 filesystem).

The lake asks its store for a few things only: list a directory, publish a Parquet file whole, write and
read a small JSON object, delete a file, drop a partition, and the pyarrow filesystem readers open
files through. Paths are ``Path`` objects for a local lake and ``PurePosixPath("bucket/prefix/…")`` for
an object store, so ``/``, ``.name`` and ``.parent`` work the same on both.

Publishing, the guarantee every reader relies on (no reader ever sees a partial file):

- local: write a hidden temporary (``.part-….tmp``) in the target directory, fsync it, rename it into
  place (atomic), fsync the directory;
- object store: the file is built whole in memory and sent as one object. S3 makes an object visible
  only when its upload completes (a PUT, or a multipart upload's completion) and a replace is atomic for
  readers (strong read-after-write consistency), so there is nothing to rename (a rename there is a copy)
  and no temporary to leave behind. A killed upload leaves no object (at most an incomplete multipart
  upload, invisible to readers; a bucket lifecycle rule removes those).

Dropping a partition (retention): local renames the directory out of sight, then deletes it; an object
store has no rename, so it first writes a ``_dropped`` marker that readers honour (the partition reads as
empty), then deletes the objects (the marker with them, last).

Credentials for an object store come from the standard AWS variables and files only (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, instance roles), read by the AWS SDK inside
pyarrow: mintel never reads, passes, pickles or prints them. The endpoint (MinIO, Ceph, moto, R2 …) is
``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, the region ``AWS_REGION`` or ``AWS_DEFAULT_REGION``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from mintel.errors import ConfigError, LakeError

COMPRESSION = "snappy"  # the most widely readable codec; decodes ~20 % faster than zstd here (bench_lake)
ROW_GROUP_ROWS = 8192  # ~20 symbols of a 375-minute session: a one-symbol read decodes one group per file


def write_parquet(table: pa.Table, sink) -> None:
    """The lake's Parquet: snappy, row groups of ROW_GROUP_ROWS, dictionary pages only for text and
    time columns. Prices and volumes are nearly all distinct, so a dictionary of them is as long as
    the column and only adds work: without them a cycle's file is written in half the time (a
    snapshot of 1000 symbols: 6.3 -> 3.1 ms) and a compacted session is ~3 % smaller."""
    dictionary = [f.name for f in table.schema
                  if pa.types.is_string(f.type) or pa.types.is_timestamp(f.type) or pa.types.is_dictionary(f.type)]
    pq.write_table(table, sink, compression=COMPRESSION, row_group_size=ROW_GROUP_ROWS, use_dictionary=dictionary)


DROPPED = "_dropped"  # object-store partitions being dropped by retention: readers skip them
TMP_PREFIX = ".part-"
TMP_SUFFIX = ".tmp"
URL_SCHEMES = ("s3",)
CONNECT_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 60.0


def is_url(location) -> bool:
    return isinstance(location, str) and "://" in location


def open_store(location, *, durable: bool = True):
    """``(store, root)`` for a lake location: a directory, or an ``s3://bucket/prefix`` URL."""
    if not is_url(location):
        return LocalStore(durable=durable), Path(location)
    parts = urlsplit(location)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return LocalStore(durable=durable), Path(parts.path)
    if scheme not in URL_SCHEMES:
        raise ConfigError(f"{location}: unsupported lake URL scheme {scheme!r} (give a directory or s3://bucket/prefix)")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigError(f"{scheme}://{parts.hostname or ''}…: a lake URL is s3://bucket/prefix only "
                          "(credentials and endpoint come from the AWS_* environment variables)")
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if not bucket:
        raise ConfigError(f"{location}: no bucket in the lake URL (s3://bucket/prefix)")
    store = ObjectStore(s3_filesystem(), scheme)
    return store, PurePosixPath(bucket, prefix) if prefix else PurePosixPath(bucket)


def s3_filesystem():
    """pyarrow's S3 filesystem configured from the standard AWS environment (credentials left to the SDK)."""
    from pyarrow import fs

    kw: dict = {"connect_timeout": CONNECT_TIMEOUT_S, "request_timeout": REQUEST_TIMEOUT_S}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        e = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        if not e.hostname:
            raise ConfigError(f"AWS_ENDPOINT_URL: {endpoint!r} is not a URL (e.g. http://127.0.0.1:9000)")
        kw["endpoint_override"] = e.netloc.rsplit("@", 1)[-1]
        kw["scheme"] = e.scheme or "https"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kw["region"] = region
    return fs.S3FileSystem(**kw)


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:300]


def parquet_bytes(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    write_parquet(table, sink)
    return sink.getvalue()


class LocalStore:
    """A directory on this machine's file system (the default)."""

    kind = "local"
    filesystem = None  # pyarrow's local file system

    def __init__(self, *, durable: bool = True) -> None:
        self.durable = durable  # the default: fsync each file (and its directory) before it counts as published

    def location(self, root: Path) -> str:
        return str(root)

    def listdir(self, path: Path) -> tuple[list[str], list[str]]:
        """(directory names, file names) in ``path``; empty when it does not exist."""
        dirs, files = [], []
        try:
            with os.scandir(path) as it:
                for e in it:
                    (dirs if e.is_dir() else files).append(e.name)
        except (FileNotFoundError, NotADirectoryError):
            pass
        return dirs, files

    def is_dir(self, path: Path) -> bool:
        return Path(path).is_dir()

    def exists(self, path: Path) -> bool:
        return os.path.exists(path)

    def version(self, path: Path) -> tuple | None:
        """What changes when the file is replaced: (inode, size, mtime ns); None when missing."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def size(self, path: Path) -> int:
        return os.stat(path).st_size

    def parquet_rows(self, path: Path) -> int:
        return pq.ParquetFile(path).metadata.num_rows

    def read_parquet(self, path: Path, schema: pa.Schema) -> pa.Table:
        return pq.read_table(path, schema=schema)

    def publish(self, table: pa.Table, path: Path, root: Path, crash=None, durable: bool | None = None) -> None:
        """Write to a hidden temporary name in the target directory, then rename it into place."""
        durable = self.durable if durable is None else durable
        directory = path.parent
        tmp = None
        try:
            created = not directory.is_dir()
            if created:
                directory.mkdir(parents=True, exist_ok=True)
            tmp = directory / f"{TMP_PREFIX}{uuid.uuid4().hex}.parquet{TMP_SUFFIX}"
            with open(tmp, "wb") as fh:
                write_parquet(table, fh)
                if durable:
                    fh.flush()
                    os.fsync(fh.fileno())
            if crash:
                crash("tmp")
            os.replace(tmp, path)
            tmp = None
            if crash:
                crash("renamed")
            if durable:  # the rename, and a new partition's own entry, survive a power cut too
                for d in [directory, *(directory.parents if created else ())]:
                    fsync_dir(d)
                    if d == root:
                        break
        except OSError as exc:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            raise LakeError(f"{path}: cannot write ({_one_line(exc)})") from exc

    def write_json(self, path: Path, payload: dict) -> None:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}{TMP_SUFFIX}")
        try:
            with open(tmp, "w") as fh:
                fh.write(json.dumps(payload))
                fh.flush()
                os.fsync(fh.fileno())  # on disk before the output it announces (whose publish syncs the directory)
            os.replace(tmp, path)
        except OSError as exc:  # disk full, read-only: a one-line LakeError, nothing left behind
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise LakeError(f"{path}: cannot write ({_one_line(exc)})") from exc

    def read_json(self, path: Path) -> dict | None:
        """The object, None when missing; a malformed one reads as {}."""
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            return None
        except OSError:
            return {}
        return _json_object(text)

    def unlink(self, path: Path) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def temporaries(self, path: Path) -> list[Path]:
        """Hidden ``.….tmp`` files a crash left (``.part-….tmp`` data, ``._compacting.json.….tmp``)."""
        _, files = self.listdir(path)
        return [Path(path) / n for n in files if n.startswith(".") and n.endswith(TMP_SUFFIX)]

    def drop_stale_temporaries(self, path: Path, older_than_s: float) -> None:
        now = time.time()
        for tmp in self.temporaries(path):
            # A crash's leftovers; a younger one may be a write in progress in the writer process.
            try:
                if now - tmp.stat().st_mtime > older_than_s:
                    self.unlink(tmp)
            except FileNotFoundError:
                pass

    def drop_dir(self, path: Path) -> None:
        """Rename out of sight first, so a reader sees the whole partition or none of it."""
        trash = path.parent / f".trash-{path.name}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def check_writable(self, root: Path) -> None:
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = root / f"{TMP_PREFIX}{uuid.uuid4().hex}.parquet{TMP_SUFFIX}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise LakeError(f"{root}: lake is not writable ({_one_line(exc)})") from None


_REPLACED_RETRIES = 3  # reads of an object replaced while being read, tried again before the error is raised


class ObjectStore:
    """Objects in a bucket through a pyarrow filesystem (``S3FileSystem``)."""

    kind = "object"

    def __init__(self, filesystem, scheme: str = "s3") -> None:
        self.filesystem = filesystem
        self.scheme = scheme

    def __repr__(self) -> str:  # never the filesystem's own repr: no option of it is printed
        return f"ObjectStore({self.scheme})"

    def location(self, root: PurePosixPath) -> str:
        return f"{self.scheme}://{root}"

    def _url(self, path) -> str:
        return f"{self.scheme}://{path}"

    def listdir(self, path) -> tuple[list[str], list[str]]:
        from pyarrow import fs

        try:
            infos = self.filesystem.get_file_info(fs.FileSelector(str(path), allow_not_found=True, recursive=False))
        except OSError as exc:
            raise LakeError(f"{self._url(path)}: cannot list ({_one_line(exc)})") from exc
        dirs = [PurePosixPath(i.path).name for i in infos if i.type == fs.FileType.Directory]
        files = [PurePosixPath(i.path).name for i in infos if i.type == fs.FileType.File]
        return dirs, files

    def _info(self, path):
        try:
            return self.filesystem.get_file_info(str(path))
        except OSError as exc:
            raise LakeError(f"{self._url(path)}: cannot read ({_one_line(exc)})") from exc

    def is_dir(self, path) -> bool:
        from pyarrow import fs

        return self._info(path).type == fs.FileType.Directory

    def exists(self, path) -> bool:
        from pyarrow import fs

        return self._info(path).type != fs.FileType.NotFound

    def version(self, path) -> tuple | None:
        """(size, mtime ns) of the object, None when missing (object stores keep mtime to the second)."""
        from pyarrow import fs

        info = self._info(path)
        if info.type == fs.FileType.NotFound:
            return None
        return (info.size, info.mtime_ns)

    def size(self, path) -> int:
        return int(self._info(path).size or 0)

    def parquet_rows(self, path) -> int:
        with self.filesystem.open_input_file(str(path)) as fh:
            return pq.ParquetFile(fh).metadata.num_rows

    def read_parquet(self, path, schema: pa.Schema) -> pa.Table:
        """The object read whole, then parsed: a Parquet reader's separate range requests (footer, then
        column chunks) could straddle a replacement of the object (the snapshot is replaced in place every
        cycle) and mix two versions. A read that straddles one here gets one version cut short or
        padded, which does not parse, and is tried again."""
        for attempt in range(_REPLACED_RETRIES + 1):
            try:
                with self.filesystem.open_input_file(str(path)) as fh:
                    data = fh.read()
                return pq.read_table(pa.BufferReader(data), schema=schema)
            except FileNotFoundError:
                raise
            except (OSError, pa.ArrowInvalid):
                if attempt == _REPLACED_RETRIES:
                    raise
        raise AssertionError("unreachable")

    def _put(self, path, data) -> None:
        """One object, whole: the bytes are all in memory before the upload starts, and the store makes
        the object visible only when the upload completes."""
        out = self.filesystem.open_output_stream(str(path))
        out.write(data)
        out.close()

    def publish(self, table: pa.Table, path, root, crash=None, durable: bool | None = None) -> None:
        try:
            data = parquet_bytes(table)
            if crash:
                crash("tmp")
            self._put(path, data)
            if crash:
                crash("renamed")
        except OSError as exc:
            raise LakeError(f"{self._url(path)}: cannot write ({_one_line(exc)})") from exc

    def write_json(self, path, payload: dict) -> None:
        try:
            self._put(path, json.dumps(payload).encode())
        except OSError as exc:
            raise LakeError(f"{self._url(path)}: cannot write ({_one_line(exc)})") from exc

    def read_json(self, path) -> dict | None:
        try:
            with self.filesystem.open_input_stream(str(path)) as fh:
                text = fh.read()
        except FileNotFoundError:
            return None
        except OSError:
            return {}
        return _json_object(text)

    def unlink(self, path) -> None:
        try:
            self.filesystem.delete_file(str(path))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise LakeError(f"{self._url(path)}: cannot delete ({_one_line(exc)})") from exc

    def temporaries(self, path) -> list:
        return []  # objects are published whole: there are no temporaries

    def drop_stale_temporaries(self, path, older_than_s: float) -> None:
        pass

    def drop_dir(self, path) -> None:
        """Marker first (readers see an empty partition from then on), then the objects, the marker last."""
        _, files = self.listdir(path)
        if not files:
            return
        self.write_json(PurePosixPath(path) / DROPPED, {"at": time.time()})
        for name in files:
            if name != DROPPED:
                self.unlink(PurePosixPath(path) / name)
        try:  # the marker, and the empty "directory" object pyarrow keeps after a prefix's last delete
            self.filesystem.delete_dir(str(path))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise LakeError(f"{self._url(path)}: cannot delete ({_one_line(exc)})") from exc

    def check_writable(self, root) -> None:
        probe = PurePosixPath(root) / f"{TMP_PREFIX}{uuid.uuid4().hex}{TMP_SUFFIX}"
        try:
            self._put(probe, b"")
            self.filesystem.delete_file(str(probe))
        except OSError as exc:
            raise LakeError(f"{self._url(root)}: lake is not writable ({_one_line(exc)})") from None


def _json_object(text: str | bytes) -> dict:
    """A JSON object, or {} for anything else (a torn or foreign manifest reads as no manifest)."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
