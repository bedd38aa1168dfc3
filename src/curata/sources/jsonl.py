"""A JSONL file (optionally gzipped, local or on S3) where each line is one document.

A record's text field becomes the item's bytes (UTF-8, ``text/plain``); its other fields,
without the id, become the item's metadata. Lines that cannot be used (invalid JSON, no text,
a repeated id) are reported in ``problems`` with their line numbers, and listing goes on.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterator, Mapping
from functools import partial
from typing import IO, Any, cast

from curata.errors import NotFound, StorageError
from curata.sources.item import SourceItem
from curata.sources.remote import error_code, object_mtime, open_object, s3_client, split_s3_uri


def _in_memory(data: bytes) -> IO[bytes]:
    return io.BytesIO(data)


class JsonlSource:
    """The records of a JSONL file as documents.

    Args:
        path: a local path or ``s3://bucket/key``; ``.gz`` files are decompressed.
        text_field: the field holding a record's text.
        id_field: the field holding its id (else, or when a record lacks it, the doc id is
            ``{file name}:{line}``).
        storage_options: passed to s3fs for ``s3://`` paths.
    """

    lists_completely = True

    def __init__(
        self,
        path: str,
        *,
        text_field: str = "text",
        id_field: str | None = "id",
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.uri = path
        self.path = path
        self.text_field = text_field
        self.id_field = id_field
        self.storage_options = storage_options
        self.file_name = path.rstrip("/").rsplit("/", 1)[-1]
        self.problems: list[tuple[str, str]] = []

    def __repr__(self) -> str:
        return f"JsonlSource({self.uri!r})"

    def list(self) -> Iterator[SourceItem]:
        """Yield one item per usable line, reading the file line by line."""
        self.problems = []
        seen: dict[str, int] = {}
        mtime, stream = self._open()
        with stream:
            for number, raw in enumerate(stream, start=1):
                if not raw.strip():
                    continue
                item = self._item(number, raw, mtime, seen)
                if item is not None:
                    yield item

    def _open(self) -> tuple[float, IO[bytes]]:
        stream: IO[bytes]
        try:
            if self.path.startswith("s3://"):
                client = s3_client(self.storage_options)
                bucket, key = split_s3_uri(self.path)
                mtime = _object_time(client, bucket, key)
                stream = open_object(client, bucket, key)
            else:
                mtime = os.stat(self.path).st_mtime
                stream = open(self.path, "rb")  # noqa: SIM115 - closed by list()
        except FileNotFoundError as err:
            raise NotFound(f"The JSONL file {self.uri} does not exist.") from err
        except OSError as err:
            raise StorageError(f"Cannot read the JSONL file {self.uri}: {err}") from err
        if self.path.endswith(".gz"):
            stream = cast(IO[bytes], gzip.GzipFile(fileobj=stream, mode="rb"))
        return mtime, stream

    def _item(
        self, number: int, raw: bytes, mtime: float, seen: dict[str, int]
    ) -> SourceItem | None:
        where = f"{self.file_name}:{number}"
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            self.problems.append((where, f"line {number} is not valid JSON ({err})"))
            return None
        if not isinstance(record, dict):
            kind = type(record).__name__
            self.problems.append((where, f"line {number} is a JSON {kind}, not an object"))
            return None
        text = record.get(self.text_field)
        if not isinstance(text, str):
            problem = "has no" if text is None else "has a non-string"
            reason = f"line {number} {problem} {self.text_field!r} field"
            self.problems.append((where, f"{reason} (name the text's field with --text-field)"))
            return None
        doc_id = where
        if self.id_field is not None and record.get(self.id_field) not in (None, ""):
            doc_id = str(record[self.id_field])
        if doc_id in seen:
            reason = f"line {number} repeats the id {doc_id!r} of line {seen[doc_id]}"
            self.problems.append((where, reason))
            return None
        seen[doc_id] = number
        data = text.encode("utf-8")
        skip = {self.text_field, self.id_field}
        return SourceItem(
            doc_id=doc_id,
            uri=f"{self.uri}#L{number}",
            size=len(data),
            mtime=mtime,
            mime="text/plain",
            metadata={k: v for k, v in record.items() if k not in skip},
            opener=partial(_in_memory, data),
        )


def _object_time(client: Any, bucket: str, key: str) -> float:
    try:
        return object_mtime(client.head_object(Bucket=bucket, Key=key))
    except Exception as err:  # botocore's errors, translated as open_object does
        if error_code(err) in {"404", "NoSuchKey", "NotFound"}:
            raise FileNotFoundError(f"s3://{bucket}/{key}") from err
        raise OSError(f"s3://{bucket}/{key}: {err}") from err
