"""How curata reports DuckDB's errors in SQL that users write."""

from __future__ import annotations

import pytest

import curata
from curata.errors import InvalidInput


def test_a_type_error_lists_a_few_candidate_functions_not_dozens(
    sqlite_lake: curata.Lake,
) -> None:
    sqlite_lake.create_dataset("t").append({"id": [1], "text": ["a"]})

    with pytest.raises(InvalidInput) as err:
        sqlite_lake.query('SELECT text + 1 FROM "t"')

    message = err.value.message
    assert message.startswith("The query failed: Binder Error: No function matches")
    assert "Candidate functions:" in message
    lines = message.splitlines()
    start = lines.index(next(line for line in lines if "Candidate functions:" in line))
    assert len(lines[start + 1 : start + 6]) == 5
    assert lines[start + 6].strip().startswith("... and ") and lines[start + 6].endswith(" more")
    assert len(lines) <= start + 8  # DuckDB's own message lists about 50
