"""The public package: its API does not change by accident and importing it stays light."""

from __future__ import annotations

import pickle
import subprocess
import sys

import curata

EXPECTED_API = {
    "AlreadyExists",
    "CatalogUnavailable",
    "Commit",
    "Conflict",
    "CurataError",
    "Dataset",
    "DatasetInfo",
    "InvalidInput",
    "Lake",
    "MissingDependency",
    "NotFound",
    "Publication",
    "QualityGateFailed",
    "Ref",
    "RowDiff",
    "Snapshot",
    "StorageError",
    "__version__",
    "init",
    "open",
}


def test_all_is_the_public_api() -> None:
    assert set(curata.__all__) == EXPECTED_API
    # Every exported name resolves (lazily loaded classes included) to what curata.lake defines.
    from curata import lake

    for name in curata.__all__:
        assert getattr(curata, name) is not None
    assert curata.Lake is lake.Lake
    assert curata.Snapshot is lake.Snapshot


def test_import_does_not_load_heavy_dependencies() -> None:
    code = (
        "import sys, curata; "
        "heavy = [m for m in ('lance', 'pyarrow', 'sqlalchemy', 'duckdb', 'pandas', 'polars') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_errors_share_one_root_and_carry_exit_codes() -> None:
    for name in ("InvalidInput", "NotFound", "AlreadyExists", "Conflict", "MissingDependency"):
        cls = getattr(curata, name)
        assert issubclass(cls, curata.CurataError)
    assert curata.InvalidInput("x").exit_code == 2
    assert curata.NotFound("x").exit_code == 2
    assert curata.Conflict("x").exit_code == 1
    assert curata.Conflict("x").transient and not curata.InvalidInput("x").transient
    err = curata.MissingDependency("datasets", "hf", "Export to a Hugging Face dataset")
    assert 'pip install "curata[hf]"' in str(err)
    back = pickle.loads(pickle.dumps(err))  # as from a worker process
    assert type(back) is curata.MissingDependency and str(back) == str(err)
    assert (back.message, back.hint, back.package) == (err.message, err.hint, "datasets")
