"""Object-storage sources (``s3://bucket/prefix``) through boto3.

boto3 is imported only when such a source is opened. ``storage_options`` take the fsspec
names users know from pandas and s3fs (``key``, ``secret``, ``token``, ``endpoint_url``,
``region_name``, ``anon``, ``client_kwargs``); anything not given comes from the usual AWS
configuration (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, profiles, instance roles).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from datetime import datetime
from functools import partial
from typing import Any

from curata.errors import InvalidInput, MissingDependency, NotFound, StorageError
from curata.sources.item import ByteStream, SourceItem, guess_mime
from curata.sources.patterns import PathFilter

_OPTION_NAMES = {
    "key": "aws_access_key_id",
    "secret": "aws_secret_access_key",
    "token": "aws_session_token",
    "endpoint_url": "endpoint_url",
    "region_name": "region_name",
}
_KNOWN_OPTIONS = sorted([*_OPTION_NAMES, "anon", "client_kwargs"])
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
_DENIED_CODES = {"AccessDenied", "403", "Forbidden"}


def s3_client(storage_options: Mapping[str, Any] | None) -> Any:
    """A boto3 S3 client built from ``storage_options``.

    Raises:
        MissingDependency: boto3 is not installed.
        InvalidInput: an option name is not one of those listed in the module docstring.
    """
    try:
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config
    except ImportError as err:
        raise MissingDependency("boto3", "s3", "Reading s3:// sources") from err
    options = dict(storage_options or {})
    unknown = sorted(set(options) - set(_KNOWN_OPTIONS))
    if unknown:
        raise InvalidInput(
            f"Unknown storage option(s) for s3://: {', '.join(unknown)}.",
            hint=f"Known options: {', '.join(_KNOWN_OPTIONS)}.",
        )
    kwargs: dict[str, Any] = dict(options.pop("client_kwargs", None) or {})
    if options.pop("anon", False):
        kwargs["config"] = Config(signature_version=UNSIGNED)
    for name, value in options.items():
        kwargs[_OPTION_NAMES[name]] = value
    return boto3.session.Session().client("s3", **kwargs)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b/`` -> ``("bucket", "a/b")``."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise InvalidInput(f"{uri!r} names no bucket.", hint="Write s3://bucket/prefix.")
    return bucket, key.strip("/")


def error_code(err: Exception) -> str:
    """The S3 error code of a botocore ``ClientError`` (``""`` for other errors)."""
    response = getattr(err, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


class _BodyReader(io.RawIOBase):
    """An S3 response body as a raw stream, so it can be buffered, read by lines or gunzipped."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


def open_object(client: Any, bucket: str, key: str) -> io.BufferedReader:
    """A buffered stream of one object's bytes.

    Raises:
        FileNotFoundError: there is no such object (any more).
        PermissionError: access was denied.
        OSError: any other failure.
    """
    try:
        response = client.get_object(Bucket=bucket, Key=key)
    except Exception as err:  # botocore's errors are translated to what a file would raise
        code = error_code(err)
        if code in _MISSING_CODES:
            raise FileNotFoundError(f"s3://{bucket}/{key} does not exist") from err
        if code in _DENIED_CODES:
            raise PermissionError(f"access to s3://{bucket}/{key} was denied") from err
        raise OSError(f"reading s3://{bucket}/{key} failed: {err}") from err
    return io.BufferedReader(_BodyReader(response["Body"]))


def _open_stream(client: Any, bucket: str, key: str) -> ByteStream:
    return open_object(client, bucket, key)


def object_mtime(info: Mapping[str, Any]) -> float:
    """An object's modification time in seconds since the epoch, 0 when the store has none."""
    modified = info.get("LastModified")
    return modified.timestamp() if isinstance(modified, datetime) else 0.0


class ObjectStoreSource:
    """Every object under an ``s3://bucket/prefix``, doc ids relative to the prefix.

    Args:
        uri: ``s3://bucket`` or ``s3://bucket/prefix`` (a prefix naming one object lists it).
        path_filter: include/exclude globs and whether hidden entries are listed.
        storage_options: see the module docstring.
    """

    lists_completely = True

    def __init__(
        self, uri: str, path_filter: PathFilter, storage_options: Mapping[str, Any] | None
    ) -> None:
        self.uri = uri
        self.bucket, self.prefix = split_s3_uri(uri)
        self.path_filter = path_filter
        self.client = s3_client(storage_options)
        self.problems: list[tuple[str, str]] = []

    def __repr__(self) -> str:
        return f"ObjectStoreSource({self.uri!r})"

    def list(self) -> Iterator[SourceItem]:
        """Yield the objects in key order; folder markers (keys ending in ``/``) are skipped."""
        self.problems.clear()
        for doc_id, info in self._objects():
            if not self.path_filter.wants_file(doc_id) or not self._folders_wanted(doc_id):
                continue
            key = str(info["Key"])
            yield SourceItem(
                doc_id=doc_id,
                uri=f"s3://{self.bucket}/{key}",
                size=int(info.get("Size") or 0),
                mtime=object_mtime(info),
                mime=guess_mime(doc_id),
                metadata={"etag": str(info["ETag"]).strip('"')} if info.get("ETag") else {},
                opener=partial(_open_stream, self.client, self.bucket, key),
            )

    def _folders_wanted(self, doc_id: str) -> bool:
        parts = doc_id.split("/")[:-1]
        return all(
            self.path_filter.wants_folder("/".join(parts[: i + 1])) for i in range(len(parts))
        )

    def _objects(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        prefix = f"{self.prefix}/" if self.prefix else ""
        found = False
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for info in page.get("Contents", ()):
                    key = str(info["Key"])
                    if not key.endswith("/"):
                        found = True
                        yield key[len(prefix) :], info
            if not found and self.prefix:
                # The URI may name one object rather than a folder: list it alone.
                head = self.client.head_object(Bucket=self.bucket, Key=self.prefix)
                info = {"Key": self.prefix, "Size": head.get("ContentLength", 0), **head}
                yield self.prefix.rsplit("/", 1)[-1], info
        except Exception as err:  # botocore raises many kinds; translated here
            code = error_code(err)
            if code in _MISSING_CODES and not found:
                return
            if code == "NoSuchBucket":
                raise NotFound(f"The bucket of {self.uri} does not exist.") from err
            if isinstance(err, StorageError | NotFound):
                raise
            raise StorageError(f"Listing {self.uri} failed: {err}") from err
