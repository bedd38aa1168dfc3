"""Lineage out of curata: the lake's runs as OpenLineage events.

This package reads the lake only through its public API (:class:`curata.Lake`); the
``openlineage-python`` client is optional (``pip install "curata[lineage]"``).
"""

from curata.lineage.openlineage import ExportSummary, export_openlineage

__all__ = ["ExportSummary", "export_openlineage"]
