"""Steps for training-pairs.yaml: plain functions from an Arrow batch to an Arrow batch."""

from __future__ import annotations

import json

import pyarrow as pa


def to_chat_messages(batch: pa.RecordBatch, system: str) -> pa.RecordBatch:
    """Add a ``messages`` column in the OpenAI chat fine-tuning shape (as JSON text)."""
    prompts = batch.column("prompt").to_pylist()
    answers = batch.column("answer").to_pylist()
    messages = [
        json.dumps(
            [
                {"role": "system", "content": system},
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": answer},
            ],
            ensure_ascii=False,
        )
        for prompt, answer in zip(prompts, answers, strict=True)
    ]
    return batch.append_column("messages", pa.array(messages, pa.string()))
