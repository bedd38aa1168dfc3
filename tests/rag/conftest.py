"""Fixtures for the knowledge-base tests: a real S3 API (moto's server on loopback), the sample
knowledge base, and the generator of its PDFs (tests/cases/make_sample_pdfs.py) on the path.
"""

from __future__ import annotations

import socket
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

CASES = Path(__file__).parent.parent / "cases"
if str(CASES) not in sys.path:
    sys.path.insert(0, str(CASES))


@dataclass(frozen=True)
class S3Server:
    """A moto S3 server and a bucket in it."""

    endpoint_url: str
    bucket: str
    client: Any

    @property
    def storage_options(self) -> dict[str, str]:
        return {"endpoint_url": self.endpoint_url, "key": "test", "secret": "test"}

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def fresh_prefix(self) -> str:
        """A prefix no other test uses, so tests sharing the server do not see each other."""
        return f"t-{uuid.uuid4().hex[:10]}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 for the whole session, with the bucket ``kb-test``."""
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="kb-test")
    try:
        yield S3Server(endpoint, "kb-test", client)
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The session's S3 server, with AWS settings of the developer's machine out of the way."""
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return s3_server


@pytest.fixture(scope="session")
def sample_kb() -> Path:
    """The sample knowledge base shipped in curata.samples (read it, do not change it)."""
    return Path(str(files("curata.samples") / "kb"))
