"""Commands that look after an index: check, compact, info."""

from __future__ import annotations

import json

import click

from searchcore.errors import SearchctlError

from .common import display_path, engine_options, engine_settings, index_option, milvus_token_option

__all__ = ["check_cmd", "compact_cmd", "info_cmd", "files_cmd"]


@click.command("check")
@index_option
@click.option(
    "--repair",
    is_flag=True,
    help="Rebuild what is derived (FAISS file, full-text table; on Milvus, the collection's rows by chunk id) "
    "and drop orphans.",
)
@milvus_token_option
def check_cmd(index_dir, repair, milvus_token):
    """Verify the index: SQLite integrity, chunks vs vectors, full-text rows, the FAISS file of the generation.

    On Milvus: the collection publishes the index's generation and holds exactly its chunk
    ids. Exits 1 if a problem remains. --repair never re-embeds and never touches the
    documents."""
    from searchcore.maintenance import check

    report = check(index_dir, repair=repair, milvus_token=milvus_token)
    for line in report.ok:
        click.echo(f"ok       {line}")
    for line in report.notes:
        click.echo(f"note     {line}")
    for line in report.repaired:
        click.echo(f"repaired {line}")
    for line in report.problems:
        click.echo(f"problem  {line}")
    if not report.healthy:
        hint = "" if repair else "; `searchctl check --repair` rebuilds what is derived"
        raise SearchctlError(f"{len(report.problems)} problem(s) in {index_dir}{hint}")


@click.command("compact")
@index_option
@milvus_token_option
def compact_cmd(index_dir, milvus_token):
    """Reclaim space after deletions (VACUUM, full-text optimise, FAISS rewrite, old generations removed)."""
    from searchcore.info import human_bytes
    from searchcore.maintenance import compact

    before, after = compact(index_dir, milvus_token=milvus_token)
    click.echo(f"compacted {index_dir}: {human_bytes(before)} -> {human_bytes(after)} ({before:,} -> {after:,} bytes)")


@click.command("info")
@index_option
@engine_options
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def info_cmd(index_dir, as_json, **engine):
    """Show the index: path, model, dimension, documents, chunks, index type, sizes on disk.

    On Milvus also the engine, its URI (never the token), the collection, its rows and index
    types; with --engine milvus --milvus-uri URI, a collection with no local index."""
    from searchcore.config import Config
    from searchcore.info import index_info

    info = index_info(Config(index_dir=index_dir, **engine_settings(engine)))
    if as_json:
        click.echo(json.dumps(info.to_dict(), indent=2))
        return
    for line in info.lines():
        click.echo(line)


@click.command("files")
@index_option
@click.option("--skipped", is_flag=True, help="List the files that could not be indexed, with the reason.")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def files_cmd(index_dir, skipped, as_json):
    """List the indexed files (kind, documents, chunks, warnings), or with --skipped the files
    the index's runs passed over and why."""
    from searchcore.store import Store

    with Store.open(index_dir, reader=True) as store:
        rows = store.skipped_list() if skipped else store.file_list()
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("no skipped files" if skipped else "no indexed files")
        return
    for row in rows:
        if skipped:
            click.echo(f"{display_path(row['path'])}: {row['reason']}")
            continue
        warned = "".join(f"\n    warning: {note}" for note in row["notes"])
        click.echo(
            f"{display_path(row['path'])}  {row['kind']}, {row['documents']:,} document"
            f"{'s' if row['documents'] != 1 else ''}, {row['chunks']:,} chunks{warned}"
        )
    what = "skipped" if skipped else "indexed"
    click.echo(f"{len(rows):,} files {what}", err=True)
