"""PII in the lake: scan a dataset version, redact a dataset, reveal encrypted values.

::

    from curata.quality.pii_lake import redact_pii, reveal_pii, scan_pii

    scan = scan_pii(lake, "tickets@3", "body")        # counts per entity, stored as a report
    scan.counts                                        # {'EMAIL_ADDRESS': 9, 'PHONE_NUMBER': 5}
    r = redact_pii(lake, "tickets", "body", "encrypt", key_file="pii.key")
    r.version, r.audit                                 # ('tickets@4', 'tickets.pii_audit@1')
    reveal_pii(lake, r.version, "body", "pii.key")     # the original texts, not published

A scan streams the version and never keeps a value: its examples are (row, entity, offsets).
A redaction publishes the new version and its audit rows together, by one recorded run, or
nothing at all. ``hash`` and ``pseudonymize`` use the lake's salt (``<lake>/secrets/pii_salt``)
so that their outputs stay consistent across redactions. See docs/quality.md.
"""

from __future__ import annotations

from curata.quality.pii_lake.redact import Redaction, audit_dataset, redact_pii
from curata.quality.pii_lake.reveal import iter_revealed, reveal_pii
from curata.quality.pii_lake.salt import lake_salt, lake_salt_path, read_salt_file
from curata.quality.pii_lake.scan import (
    PiiExample,
    PiiScan,
    classification_for,
    scan_html_blocks,
    scan_pii,
)

__all__ = [
    "PiiExample",
    "PiiScan",
    "Redaction",
    "audit_dataset",
    "classification_for",
    "iter_revealed",
    "lake_salt",
    "lake_salt_path",
    "read_salt_file",
    "redact_pii",
    "reveal_pii",
    "scan_html_blocks",
    "scan_pii",
]
