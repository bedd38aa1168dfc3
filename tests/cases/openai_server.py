"""An OpenAI-compatible embeddings server on loopback, for testing ``openai:MODEL`` embedders.

It speaks ``POST /v1/embeddings`` as OpenAI does, with vectors from feature hashing of the
words of each text (deterministic, and texts sharing words are near each other), scaled so that
they are *not* unit length. It can be told to misbehave: answer an HTTP error to the first N
requests or to all, answer late, shuffle the order of ``data``, or require an API key.

    with OpenAIServer() as server:
        server.fail_first, server.status = 2, 500
        ...  # OPENAI_BASE_URL=server.base_url
        assert len(server.requests) == 3
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SCALE = 2.5


def embedding_of(text: str, dim: int) -> list[float]:
    """The (not normalised) vector the server returns for ``text``."""
    vector = [0.0] * dim
    words = re.findall(r"\w+", text.lower()) or [text]
    for word in words:
        digest = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "big")
        vector[(digest >> 1) % dim] += SCALE if digest & 1 else -SCALE
    return vector


@dataclass
class Request:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class OpenAIServer:
    """The server; change its attributes between requests to change how it answers."""

    dim: int = 32
    #: answer ``status`` to this many requests first
    fail_first: int = 0
    #: answer ``status`` to every request
    fail_always: bool = False
    status: int = 500
    #: seconds to wait before answering (longer than the client's timeout: a timeout)
    delay: float = 0.0
    #: return ``data`` in reverse order (clients must use ``index``)
    shuffle: bool = False
    #: the Bearer token required, if any (else any or none is accepted)
    api_key: str | None = None
    #: how to spoil a successful answer: ``not-json`` (an HTML page), ``one-missing`` (one
    #: embedding fewer than texts) or ``cut-off`` (the connection closes halfway through)
    spoil: str | None = None
    requests: list[Request] = field(default_factory=list)
    _failed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        """What ``OPENAI_BASE_URL`` should be."""
        assert self._httpd is not None, "the server is not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def embedding_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path == "/v1/embeddings"]

    def start(self) -> OpenAIServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes requests sleeping in ``delay``
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(self, request: Request) -> tuple[int, Any]:
        """Status and JSON body for ``request`` (recorded first)."""
        with self._lock:
            self.requests.append(request)
            failing = self.fail_always or self._failed < self.fail_first
            if failing:
                self._failed += 1
        if self.delay:
            self._stopping.wait(self.delay)
        if request.path != "/v1/embeddings":
            return 404, _error(f"Unknown path {request.path}", "invalid_request_error")
        authorized = self.api_key is None or (
            request.headers.get("authorization") == f"Bearer {self.api_key}"
        )
        if not authorized:
            return 401, _error("Incorrect API key provided.", "invalid_api_key")
        if failing:
            return self.status, _error("The server had an error.", "server_error")
        body = request.body
        if not isinstance(body, dict) or not body.get("model") or "input" not in body:
            return 400, _error("'model' and 'input' are required.", "invalid_request_error")
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        data = [
            {"object": "embedding", "index": i, "embedding": embedding_of(text, self.dim)}
            for i, text in enumerate(texts)
        ]
        if self.shuffle:
            data.reverse()
        if self.spoil == "not-json":
            return 200, "<html><body>Welcome to nginx!</body></html>"
        if self.spoil == "one-missing":
            data.pop()
        tokens = sum(len(re.findall(r"\w+", t)) for t in texts)
        return 200, {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": code, "param": None, "code": code}}


def _handler(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, reply = server.answer(Request(self.path, headers, body))
            payload = reply.encode() if isinstance(reply, str) else json.dumps(reply).encode()
            length = len(payload)
            if status == 200 and server.spoil == "cut-off":
                payload = payload[: length // 2]  # and close: the client sees a short read
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up waiting (a timeout test)
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
