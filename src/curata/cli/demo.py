"""``curata demo``: a guided run of real CLI commands on the bundled support-tickets sample."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from rich.markup import escape

from curata.cli.output import console
from curata.errors import InvalidInput

DEMO_MARKER = ".curata-demo"


def _prepare(folder: Path) -> Path:
    """Make ``folder`` empty for the demo, refusing to wipe anything the demo did not make."""
    if folder.exists() and any(folder.iterdir()):
        if not (folder / DEMO_MARKER).is_file():
            raise InvalidInput(
                f"{folder} exists and was not made by `curata demo`; not touching it.",
                hint="Pass --dir with a new or empty folder.",
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DEMO_MARKER).write_text("made by `curata demo`; safe to delete\n")
    return folder.resolve()


def run_demo(app: Any, folder: Path, embedder: str = "minilm") -> None:
    """Run the walkthrough: every step is a real ``curata`` command, printed before it runs."""
    folder = _prepare(folder)
    samples = resources.files("curata.samples")
    tickets = folder / "tickets.csv"
    corrections = folder / "tickets_corrections.jsonl"
    tickets.write_bytes(samples.joinpath("tickets.csv").read_bytes())
    corrections.write_bytes(samples.joinpath("tickets_corrections.jsonl").read_bytes())
    lake = str(folder / ".curata")

    def step(title: str, *args: str) -> None:
        console.rule(f"[bold]{title}")
        command = escape(" ".join(_shell_quote(a) for a in args))
        console.print(f"[dim]$ curata {command}[/]", soft_wrap=True)
        app(args=["--lake", lake, *args], prog_name="curata", standalone_mode=False)

    console.print(f"[bold]curata demo[/] in {escape(str(folder))}\n")
    step("Create a lake (a folder; the catalog is SQLite inside it)", "init", str(folder))
    step(
        "Create a dataset with a primary key",
        "dataset", "create", "tickets", "--kind", "records", "--key", "ticket_id",
        "--owner", "support-team", "--description", "Support tickets of Lumen Notes",
        "--tag", "support",
    )  # fmt: skip
    step("Import the sample tickets: version 1", "dataset", "import", "tickets", str(tickets),
         "-m", "initial import from the helpdesk export")  # fmt: skip
    step("Tag it, so it can always be read back", "dataset", "tag", "tickets@1", "orig")
    step("Upsert corrections: only what changed is counted", "dataset", "import", "tickets",
         str(corrections), "--mode", "upsert", "-m", "answers reviewed by QA")  # fmt: skip
    step("Classify a column in the catalog", "dataset", "set", "tickets",
         "--classify", "body=pii:free-text")  # fmt: skip
    step("History, newest first, with automatic change logs", "log", "tickets")
    step("What changed between the original and the head", "diff", "tickets@orig", "tickets",
         "--rows", "--limit", "3")  # fmt: skip
    step("SQL over any versions at once", "query",
         'SELECT o.status AS before, h.status AS now, count(*) AS tickets '
         'FROM "tickets@orig" o JOIN tickets h USING (ticket_id) '
         "GROUP BY ALL ORDER BY tickets DESC")  # fmt: skip
    step("Promote the head to prod", "dataset", "tag", "tickets", "prod")
    step("An accidental delete...", "dataset", "delete-rows", "tickets",
         "--where", "status = 'solved'", "-m", "cleanup (oops)")  # fmt: skip
    step("...is undone by a revert: a new version, history intact", "dataset", "revert",
         "tickets@prod", "-m", "undo the cleanup")  # fmt: skip
    step("The full story", "log", "tickets")
    step("Read any version back exactly as it was", "dataset", "head", "tickets@orig", "-n", "3")
    step("Export for training or sharing", "dataset", "export", "tickets@prod",
         str(folder / "tickets-prod.parquet"))  # fmt: skip
    run_kb_demo(step, folder, embedder)
    console.rule()
    console.print(
        f"Done. The lake is in {lake}; try for example:\n"
        f"  cd {folder} && curata ls && curata dataset show tickets@prod\n"
        f'  cd {folder} && curata kb search handbook "how do I restore a backup?"',
        markup=False,
    )


def run_kb_demo(step: Any, folder: Path, embedder: str) -> None:
    """The knowledge-base part: build, ask, edit, re-sync incrementally, search the past."""
    import json

    samples = resources.files("curata.samples")
    corpus = folder / "handbook"
    shutil.copytree(str(samples.joinpath("kb")), corpus)
    questions = json.loads(samples.joinpath("kb_questions.json").read_text())
    step(f"A knowledge base with the local embedding model ({embedder})",
         "kb", "create", "handbook", "--embedder", embedder)  # fmt: skip
    step("Index the product handbook (md, html, pdf, txt)", "kb", "sync", "handbook",
         str(corpus))  # fmt: skip
    step("Promote it to prod", "kb", "tag", "handbook", "2", "prod")
    shown: set[str] = set()
    for q in questions:  # one question answered by a txt, a pdf and an md document
        kind = q["doc_id"].rsplit(".", 1)[-1]
        if kind in {"txt", "pdf", "md"} - shown:
            shown.add(kind)
            step("Ask it", "kb", "search", "handbook", q["question"], "-k", "2")
    page = corpus / "server" / "backups.md"
    page.write_text(page.read_text().replace("**30 days**", "**45 days**"))
    console.rule("[bold]Edit one document: backups are now kept for 45 days")
    step("Re-sync: one document changed, only its edited chunk is embedded again",
         "kb", "sync", "handbook", str(corpus), "-m", "longer backup retention")  # fmt: skip
    question = "How long are the nightly server backups kept?"
    step("The head knows the new answer", "kb", "search", "handbook", question, "-k", "1")
    step("prod still answers from the version it was tagged at", "kb", "search", "handbook",
         question, "-k", "1", "--at", "prod")  # fmt: skip
    step("What changed between the versions", "kb", "diff", "handbook", "prod", "3")
    step("Chunks and documents agree", "kb", "check", "handbook")


def _shell_quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)
