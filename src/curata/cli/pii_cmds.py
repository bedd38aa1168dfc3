"""``curata pii ...``: scan a dataset version for PII, redact it, reveal encrypted values."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from curata.cli.common import AuthorOpt, JsonOpt, MessageOpt, lake_of
from curata.cli.output import console, print_json, print_table, rows_json

if TYPE_CHECKING:
    from curata.quality.pii_lake import PiiScan, Redaction

app = typer.Typer(
    help="Find, redact and reveal PII in dataset columns.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

ColumnOpt = Annotated[str, typer.Option("--column", "-c", help="The text column.")]
EntitiesOpt = Annotated[
    str | None,
    typer.Option(
        "--entities",
        metavar="E,...",
        help="Only these entities, e.g. EMAIL_ADDRESS,PHONE_NUMBER (default: all; see "
        "`curata pii entities`).",
    ),
]
NerOpt = Annotated[
    str | None,
    typer.Option(
        "--ner",
        metavar="spacy:MODEL",
        help="Also find names, places and organisations with this spaCy model, e.g. "
        "spacy:en_core_web_sm.",
    ),
]
ThresholdOpt = Annotated[
    float, typer.Option("--threshold", min=0.0, max=1.0, help="Lowest score reported.")
]
RecognizersOpt = Annotated[
    Path | None,
    typer.Option("--recognizers", metavar="FILE.yaml", help="Custom recognizers (YAML)."),
]
REVEAL_SHOWN = 20


@app.command("scan")
def scan(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="Version to scan: NAME[@VERSION].")],
    column: ColumnOpt,
    entities: EntitiesOpt = None,
    ner: NerOpt = None,
    threshold: ThresholdOpt = 0.5,
    recognizers: RecognizersOpt = None,
    html: Annotated[
        Path | None, typer.Option("--html", metavar="FILE", help="Also write an HTML report.")
    ] = None,
    fail_on_pii: Annotated[
        bool, typer.Option("--fail-on-pii", help="Exit with 1 when PII is found (for CI).")
    ] = False,
    no_store: Annotated[
        bool,
        typer.Option("--no-store", help="Print only: store no report, leave the catalog alone."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Count the PII in a column; store the counts as the report NAME.pii_scan and classify
    the column in the catalog (pii:email, pii:phone, ... or pii:mixed)."""
    from curata.quality.pii_lake import scan_pii

    result = scan_pii(
        lake_of(ctx),
        ref,
        column,
        entities=entities,
        ner=ner,
        threshold=threshold,
        recognizers_file=recognizers,
        store=not no_store,
        classify=not no_store,
    )
    if html is not None:
        from curata.quality.html import write_html
        from curata.quality.pii_lake import scan_html_blocks

        write_html(
            html,
            f"PII scan of {result.checked}",
            scan_html_blocks(result),
            subtitle=f"column {result.column}",
        )
    if as_json:
        print_json(result.to_dict())
    else:
        _print_scan(result, html)
    if fail_on_pii and result.rows_with_pii:
        raise typer.Exit(1)


def _print_scan(result: PiiScan, html: Path | None) -> None:
    from curata.quality.pii_lake.scan import NER_OFF_NOTE

    console.print(
        f"[bold]{escape(result.checked)}[/] column [bold]{escape(result.column)}[/]: "
        f"{result.rows:,} rows scanned, {result.rows_with_pii:,} with PII ({result.share:.1%})."
    )
    width = max((len(e) for e in result.counts), default=0)
    for entity, count in result.counts.items():
        rows = result.rows_by_entity.get(entity, 0)
        console.print(f"  {entity:<{width}}  {count:>6,} in {rows:,} rows", markup=False)
    if result.examples:
        console.print("Examples (row, entity, offsets; values are never shown):")
        row_width = max(len(x.row) for x in result.examples)
        for x in result.examples:
            console.print(
                f"  {x.row:<{row_width}}  {x.entity:<{width}}  [{x.start}, {x.end})", markup=False
            )
    if result.classification:
        console.print(f"Column class: {result.column} = {result.classification}", markup=False)
    if result.report is not None:
        same = "" if result.report.created else ", the same as before"
        run = result.report.run_id[:8]
        console.print(f"Report: {result.report.ref}{same} (run {run})", markup=False)
    if html is not None:
        console.print(f"HTML report: {html}", markup=False)
    if result.ner is None:
        console.print(NER_OFF_NOTE, markup=False)


@app.command("redact")
def redact(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Dataset (its head is redacted).")],
    column: ColumnOpt,
    operator: Annotated[
        str,
        typer.Option(
            "--operator",
            "-o",
            help="replace, mask, redact, hash, pseudonymize or encrypt.",
        ),
    ],
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", metavar="FILE", help="Key for encrypt (`curata pii keygen`)."),
    ] = None,
    salt_file: Annotated[
        Path | None,
        typer.Option(
            "--salt-file",
            metavar="FILE",
            help="Salt for hash and pseudonymize (default: the lake's, secrets/pii_salt).",
        ),
    ] = None,
    entities: EntitiesOpt = None,
    ner: NerOpt = None,
    threshold: ThresholdOpt = 0.5,
    recognizers: RecognizersOpt = None,
    message: MessageOpt = "",
    author: AuthorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace the PII of a column and publish the new version of NAME together with its
    audit rows in NAME.pii_audit (entity, offsets, operator; never a value)."""
    from curata.quality.pii_lake import read_salt_file, redact_pii

    result = redact_pii(
        lake_of(ctx, author),
        name,
        column,
        operator,
        key_file=key_file,
        salt=None if salt_file is None else read_salt_file(salt_file),
        entities=entities,
        message=message,
        threshold=threshold,
        ner=ner,
        recognizers_file=recognizers,
        author=author,
    )
    if as_json:
        print_json(result.to_dict())
    else:
        _print_redaction(result)


def _print_redaction(result: Redaction) -> None:
    if result.version is None:
        console.print(
            f"No PII found in {result.read} column {result.column} "
            f"({result.rows:,} rows); no version published.",
            markup=False,
        )
        return
    found = ", ".join(f"{e} {n:,}" for e, n in result.counts.items())
    console.print(f"[bold]{escape(result.version)}[/]  {escape(result.summary)}")
    console.print(
        f"Redacted {result.redactions:,} values ({found}) in {result.rows_redacted:,} of "
        f"{result.rows:,} rows with {result.operator}.",
        markup=False,
    )
    console.print(f"Audit: {result.audit}  (run {result.run_id[:8]})", markup=False)
    if result.classification:
        console.print(f"Column class: {result.column} = {result.classification}", markup=False)


@app.command("reveal")
def reveal(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="Version to read: NAME[@VERSION].")],
    column: ColumnOpt,
    key_file: Annotated[
        Path,
        typer.Option("--key-file", metavar="FILE", help="The key used to encrypt."),
    ],
    limit: Annotated[
        int | None,
        typer.Option(
            min=0, help=f"At most N rows (default: all with --output, {REVEAL_SHOWN} otherwise)."
        ),
    ] = None,
    all_rows: Annotated[
        bool, typer.Option("--all", help="Every row, not only those with encrypted values.")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", metavar="FILE", help="Write the rows to a Parquet, CSV or JSONL file."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --output file.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Decrypt the values `pii redact --operator encrypt` replaced. Prints or exports the
    clear text; publishes nothing."""
    from curata.formats import write_table
    from curata.quality.pii_lake import iter_revealed
    from curata.quality.pii_lake.reveal import revealed_schema

    snapshot = lake_of(ctx).ref(ref)
    schema = revealed_schema(snapshot, column)
    if output is not None:
        batches = iter_revealed(snapshot, column, key_file, limit=limit, all_rows=all_rows)
        rows = write_table(batches, output, overwrite=overwrite, schema=schema)
        if as_json:
            print_json({"read": snapshot.ref, "output": str(output), "rows": rows})
        else:
            console.print(f"Wrote {rows:,} rows of {snapshot.ref} to {output}.", markup=False)
        return
    import pyarrow as pa

    shown = REVEAL_SHOWN if limit is None else limit
    batches = iter_revealed(snapshot, column, key_file, limit=shown, all_rows=all_rows)
    table = pa.Table.from_batches(list(batches), schema=schema)
    if as_json:
        print_json(rows_json(table))
        return
    # Whole texts, not a table: a table cuts long cells, and the point is to read them.
    what = "rows" if all_rows else "rows with encrypted values"
    console.print(f"{snapshot.ref}, column {column}: {table.num_rows} {what}", markup=False)
    name = table.column_names[0]
    for row in table.to_pylist():
        console.print(f"{row[name]}  {row[column]}", markup=False)


@app.command("keygen")
def keygen(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Where to write the new key.")],
) -> None:
    """Create a key file for `pii redact --operator encrypt` (mode 0600; never overwrites)."""
    from curata.quality.pii import generate_key_file

    path = generate_key_file(file)
    console.print(
        f"Wrote a new key to {path}. Keep it apart from the data: whoever holds it can read "
        "every value encrypted with it, and without it they cannot be read back.",
        markup=False,
    )


@app.command("entities")
def entities_(as_json: JsonOpt = False) -> None:
    """List the entities curata detects, and whether NER (names, places, organisations) can
    run here."""
    from curata.quality.pii import ner_available, supported_entities
    from curata.quality.pii.model import NER_ENTITIES

    spacy = ner_available()
    model = "spacy:en_core_web_sm"
    small = spacy and ner_available(model)
    rows = [
        {"entity": e, "detected_by": "ner" if e in NER_ENTITIES else "pattern"}
        for e in supported_entities()
    ]
    if as_json:
        print_json({"entities": rows, "spacy_installed": spacy, "en_core_web_sm": small})
        return
    import pyarrow as pa

    print_table(pa.Table.from_pylist(rows), title="PII entities")
    if not spacy:
        console.print(
            'NER: off. spaCy is not installed: pip install "curata[ner]", then '
            "python -m spacy download en_core_web_sm, and pass --ner spacy:en_core_web_sm.",
            markup=False,
        )
    elif not small:
        console.print(
            "NER: spaCy is installed; en_core_web_sm is not (python -m spacy download "
            "en_core_web_sm). Any installed model works: --ner spacy:MODEL.",
            markup=False,
        )
    else:
        console.print(f"NER: available with --ner {model} (or another spaCy model).", markup=False)
