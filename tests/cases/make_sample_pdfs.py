"""Write the PDF documents of the sample knowledge base (src/curata/samples/kb/) with fpdf2.

The generated PDFs are committed; this script holds their text, so that tests and the parser
benchmark can compare what a parser extracts with what was written. Run it from the
repository root after changing a text::

    python tests/cases/make_sample_pdfs.py

The output is reproducible: the creation date is fixed, so an unchanged text gives the same
bytes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

KB = Path(__file__).resolve().parents[2] / "src" / "curata" / "samples" / "kb"
CREATED = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)

# doc_id -> (title, pages); each page is a heading followed by paragraphs.
PDFS: dict[str, tuple[str, list[list[str]]]] = {
    "guides/team-admin-guide.pdf": (
        "Lumen Notes Team - Administrator guide",
        [
            [
                "Administrator guide",
                "This guide is for the owners and admins of a Lumen Notes Team workspace. "
                "Everything described here happens in the admin console, which admins open from"
                " the app with Account > Admin console.",
                "A workspace has four roles. The Owner pays for the workspace and can delete "
                "it; there is exactly one. Admins manage members, billing and security "
                "settings. Members create and share notebooks. Guests see only the notebooks "
                "shared with them and do not take a seat.",
                "Shared notebooks belong to the workspace, not to the member who created them, "
                "so they stay when that member leaves.",
            ],
            [
                "Members and seats",
                "Invite members under Admin > Members > Invite. An invitation is valid for 14 "
                "days; after that, send a new one. Each member takes one seat, and a workspace "
                "can never have more members than seats.",
                "When you remove a member, their seat is freed at once and they are signed out "
                "on every device. Their private notebooks are kept for 60 days. During those 60"
                " days an admin can transfer them to another member under Admin > Members > "
                "Removed > Transfer notes. After 60 days the private notebooks are deleted for "
                "good.",
                "To let a member keep their notes when they leave, ask them to export their "
                "private notebooks before you remove them.",
            ],
            [
                "Security settings",
                "Single sign-on works with any identity provider that speaks SAML 2.0, such as "
                "Okta, Microsoft Entra ID and Google Workspace. With SCIM provisioning, members"
                " are added and removed automatically when they join or leave groups in your "
                "directory.",
                "Admins can require two-factor authentication for all members, restrict sign-in"
                " to the company's email domains and turn off sharing outside the workspace.",
                "The audit log records sign-ins, exports, sharing and changes to settings. It "
                "is kept for 1 year and can be downloaded as a CSV file under Admin > Audit "
                "log.",
            ],
        ],
    ),
    "guides/server-operations-manual.pdf": (
        "Lumen Notes Server - Operations manual",
        [
            [
                "Operations manual",
                "This manual is for the people who run Lumen Notes Server: upgrades, monitoring"
                " and capacity. Installation and configuration are covered in the server guides"
                " of the help center.",
                "The server is one container that talks to one PostgreSQL database and one "
                "folder of attachments. It has a health endpoint: GET /healthz on the admin "
                'port returns the JSON {"status": "ok"} when the server and its database are '
                "reachable.",
            ],
            [
                "Upgrades",
                "Minor versions (4.3.0 to 4.3.2) upgrade in place: pull the new image and "
                "restart the container. Devices reconnect within a minute.",
                "Major versions (4.2 to 4.3) change the database schema. Take a backup, put the"
                " server in maintenance mode, run lumen-server migrate, then restart. Skipping "
                "a major version is not supported: to go from 4.1 to 4.3, upgrade to 4.2 first.",
                "Apps older than the server by more than one major version cannot sign in.",
            ],
            [
                "Monitoring",
                "The metrics port exposes Prometheus metrics. The two to watch are "
                "lumen_sync_connections, the number of connected devices, and "
                "lumen_sync_queue_depth, the changes waiting to be written. Alert when the "
                "queue depth stays above 1,000 for 10 minutes: the database is not keeping up.",
                "Logs go to standard output in JSON lines. Inside the container they are also "
                "written to /var/log/lumen, rotated daily and kept for 14 days.",
            ],
            [
                "Capacity",
                "One server handles about 2,000 connected devices per CPU core. PostgreSQL "
                "needs about 1 GB of disk per 100,000 notes, attachments excluded.",
                "With the default nightly backups, at most 24 hours of changes can be lost if "
                "the server and its disk are lost together. For a shorter window, use "
                "PostgreSQL streaming replication and copy the attachments folder continuously.",
            ],
        ],
    ),
    "legal/data-processing-agreement.pdf": (
        "Data processing agreement",
        [
            [
                "Data processing agreement",
                "This agreement between the customer and Lumen Labs GmbH, Köpenicker Straße 12,"
                " 10997 Berlin, Germany, governs the processing of personal data by Lumen Labs "
                "on behalf of the customer under Article 28 of the General Data Protection "
                "Regulation.",
                "Lumen Labs processes the personal data contained in notes, attachments and "
                "account details only to provide the Lumen Notes service and only on the "
                "customer's documented instructions.",
            ],
            [
                "Subprocessors",
                "Lumen Labs uses these subprocessors: Hetzner Online GmbH (hosting, Germany), "
                "Amazon Web Services EMEA SARL (hosting, Oregon region, for accounts outside "
                "Europe), Postmark (transactional email) and Stripe (payments).",
                "Lumen Labs informs the customer of a new subprocessor at least 30 days before "
                "it starts processing. The customer may object within that period; if no "
                "solution is found, the customer may terminate the affected service.",
            ],
            [
                "Security incidents and deletion",
                "Lumen Labs notifies the customer of a personal data breach without undue delay"
                " and at the latest within 72 hours of becoming aware of it, with the "
                "information the customer needs for its own notifications.",
                "When the contract ends, Lumen Labs deletes the customer's personal data within"
                " 30 days, and from backups within 90 days, unless the customer asks for an "
                "export first. The customer may audit compliance once per calendar year.",
            ],
        ],
    ),
    "release-notes/release-notes-4.3.pdf": (
        "Lumen Notes 4.3 - What's new",
        [
            [
                "What's new in Lumen Notes 4.3",
                "Lumen Notes 4.3.0 was released on 2025-04-22 for all platforms.",
                "Shared notebooks on the Team plan now merge simultaneous edits paragraph by "
                "paragraph, so two people typing in the same note no longer create conflicted "
                "copies. Search gained the updated: filter, for example updated:7d, and saved "
                "searches now sync between devices. On Linux, the app is available on Flathub.",
            ],
            [
                "Lumen Notes Server 4.3",
                "Server 4.3 adds single sign-on with SAML 2.0, SCIM provisioning and the lumen-"
                "server backup verify command. Upgrading from 4.2 needs a database migration; "
                "see the operations manual.",
                "Apps of version 4.1 and older cannot sign in after 2025-12-31. Update every "
                "device to 4.3 before then.",
            ],
        ],
    ),
    "guides/migrating-from-evernote.pdf": (
        "Migrating from Evernote",
        [
            [
                "Migrating from Evernote",
                "In Evernote, export each notebook as an ENEX file (File > Export notebook). "
                "Then, in Lumen Notes, choose File > Import > Evernote and select the files. "
                "Each ENEX file becomes a notebook with the same name.",
                "One import file can hold up to 50,000 notes. Titles, tags, creation dates, "
                "attachments and checklists are kept. The import runs at about 1,000 notes per "
                "minute and continues in the background if you close the window.",
            ],
            [
                "What changes",
                "Evernote reminders become Lumen Notes reminders. Links between notes are "
                "rewritten to point to the imported notes. Text that was encrypted in Evernote "
                "is imported as an attachment and stays encrypted with the Evernote passphrase.",
                "Notebook stacks are kept as stacks. Evernote's web clips are imported as "
                "regular notes with their original address at the top.",
            ],
        ],
    ),
}


def page_text(doc_id: str, page: int) -> str:
    """The text written on a page (1-based) of a sample PDF: heading and paragraphs."""
    return "\n".join(PDFS[doc_id][1][page - 1])


def build_pdf(title: str, pages: list[list[str]]) -> bytes:
    """A PDF with one page per entry: a bold heading, then the paragraphs."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_creator("curata tests/cases/make_sample_pdfs.py")
    pdf.set_creation_date(CREATED)
    pdf.set_auto_page_break(auto=True, margin=20)
    for heading, *paragraphs in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", style="B", size=16)
        pdf.multi_cell(0, 9, heading)
        pdf.ln(3)
        pdf.set_font("Helvetica", size=11)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph)
            pdf.ln(3)
    return bytes(pdf.output())


def main() -> None:
    for doc_id, (title, pages) in PDFS.items():
        target = KB / doc_id
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(build_pdf(title, pages))
        print(f"wrote {target.relative_to(KB.parents[3])} ({len(pages)} pages)")


if __name__ == "__main__":
    main()
