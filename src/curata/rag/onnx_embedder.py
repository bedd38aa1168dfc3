"""``minilm-int8``: all-MiniLM-L6-v2 run by ONNX Runtime with int8 weights.

sentence-transformers' own ONNX backend needs ``optimum-onnx``, whose only release requires
``transformers<4.58``, while sentence-transformers 6 requires ``transformers>=5``: the two
cannot be installed together. curata therefore exports the transformer of the local model
itself, once, with ``torch.onnx.export``, and quantises its matrix multiplications to int8 per
output channel with ``onnxruntime.quantization.quantize_dynamic``. Embedding then needs no
torch: the tokenizer, the ONNX graph, mean pooling and normalisation, as sentence-transformers
does them, one text at a time (see :meth:`MiniLMInt8Embedder.embed`). On this project's 2-core
benchmark machine it embeds about twice as fast as ``minilm``, with vectors at a cosine of 0.99
to ``minilm``'s (``bench/bench_kb.py``); they are not the same vectors, so it is an embedder of
its own (its own cache entries and chunks).

The export goes to ``$CURATA_CACHE_DIR/onnx`` (default ``~/.cache/curata/onnx``), in a folder
named after the model files, written to a temporary name and renamed: concurrent first uses
do not clash, and nothing is downloaded.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curata.errors import MissingDependency
from curata.rag.embedders import MiniLMEmbedder, _normalise, _sentence_transformer

if TYPE_CHECKING:
    import numpy as np

SPEC = "minilm-int8"
MODEL_FILE = "model-int8.onnx"
#: the model's input length (sentence-transformers' ``max_seq_length`` for all-MiniLM-L6-v2)
MAX_LENGTH = 256
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def cache_root() -> Path:
    """Where exported models are kept: ``$CURATA_CACHE_DIR/onnx``, else under
    ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    base = os.environ.get("CURATA_CACHE_DIR")
    if base:
        return Path(base) / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "curata" / "onnx"


class MiniLMInt8Embedder(MiniLMEmbedder):
    """all-MiniLM-L6-v2 with int8 matrix multiplications, in ONNX Runtime (384 dimensions;
    tokens counted and split exactly as ``minilm`` does)."""

    def __init__(self) -> None:
        super().__init__()
        self.spec = SPEC
        # Found, not imported: onnx is needed only for the export, and loading it costs time
        # on every search.
        for package in ("onnxruntime", "onnx"):
            if importlib.util.find_spec(package) is None:
                raise MissingDependency(package, "onnx", f"the embedder {SPEC!r}")

    @functools.cached_property
    def _session(self) -> Any:
        import onnxruntime as ort

        path = exported_model(self.path)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    @functools.cached_property
    def _encoder(self) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(os.path.join(self.path, "tokenizer.json"))
        tokenizer.enable_truncation(MAX_LENGTH)
        tokenizer.no_padding()
        return tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray[Any, Any]:
        """Vectors of ``texts``, each text run alone: dynamic int8 quantisation scales the
        activations of a whole call, so in a batch a text's vector would depend on the texts
        beside it (and on their padding). Alone it is the same in every batch, every run and
        on every node, and still about twice as fast as ``minilm`` in batches."""
        import numpy as np

        out = np.zeros((len(texts), self.dim), np.float32)
        for row, encoding in enumerate(self._encoder.encode_batch(list(texts))):
            feed = {
                "input_ids": np.array([encoding.ids], np.int64),
                "attention_mask": np.array([encoding.attention_mask], np.int64),
                "token_type_ids": np.array([encoding.type_ids], np.int64),
            }
            hidden = self._session.run(None, feed)[0][0]
            out[row] = hidden.mean(axis=0)  # no padding: every token counts
        return _normalise(out)


@functools.cache
def minilm_int8() -> MiniLMInt8Embedder:
    """One per process: it keeps its ONNX Runtime session, which takes a fraction of a second
    to load (and the model files to be looked at) for every search otherwise."""
    return MiniLMInt8Embedder()


def exported_model(model_path: str) -> Path:
    """The int8 ONNX export of the sentence-transformers model at ``model_path``, made on
    first use and kept in :func:`cache_root`."""
    folder = cache_root() / f"minilm-{_files_digest(model_path)}"
    target = folder / MODEL_FILE
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        _export_int8(model_path, Path(tmp))
        os.replace(Path(tmp) / MODEL_FILE, target)  # atomic: a reader sees all of it or none
    return target


def _files_digest(model_path: str) -> str:
    """A short digest of the model's files (names, sizes, mtimes): a new model version gets a
    new export."""
    h = hashlib.sha256()
    for path in sorted(Path(model_path).rglob("*")):
        if path.is_file():
            stat = path.stat()
            h.update(f"{path.relative_to(model_path)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _export_int8(model_path: str, folder: Path) -> None:
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as err:
        raise MissingDependency(
            err.name or "onnxruntime", "onnx", f"the embedder {SPEC!r}"
        ) from err

    fp32 = folder / "model.onnx"
    export_transformer(_sentence_transformer(model_path), fp32)
    logging.disable(logging.WARNING)  # its advice to pre-process the graph
    try:
        quantize_dynamic(
            fp32,
            folder / MODEL_FILE,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
        )
    finally:
        logging.disable(logging.NOTSET)


def export_transformer(model: Any, path: Path) -> None:
    """Export the transformer of sentence-transformers ``model`` (its last hidden state, for
    mean pooling outside) to an fp32 ONNX graph at ``path``, with batch and token axes free."""
    try:
        import torch
    except ImportError as err:
        raise MissingDependency("torch", "onnx", f"the embedder {SPEC!r}") from err

    class LastHiddenState(torch.nn.Module):
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = model.tokenizer(["a short text", "a longer text to pad"], padding=True,
                             return_tensors="pt")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHiddenState(model[0].auto_model.eval()),
            tuple(sample[n] for n in _INPUTS),
            str(path),
            input_names=list(_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*_INPUTS, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
