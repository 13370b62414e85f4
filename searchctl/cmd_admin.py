"""Commands that look after an index: check, compact, info."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    from searchcore.maintenance import compact

    before, after = compact(index_dir, milvus_token=milvus_token)
    click.echo(f"compacted {index_dir}: {_human(before)} -> {_human(after)} ({before:,} -> {after:,} bytes)")


@click.command("info")
@index_option
@engine_options
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def info_cmd(index_dir, as_json, **engine):
    """Show the index: path, model, dimension, documents, chunks, index type, sizes on disk.

    On Milvus also the engine, its URI (never the token), the collection, its rows and index
    types; with --engine milvus --milvus-uri URI, a collection with no local index."""
    from searchcore.config import Config
    from searchcore.engines import open_source, recorded_target
    from searchcore.milvus.reader import describe
    from searchcore.store import Store
    from searchcore.vectors import describe as describe_vectors

    settings = engine_settings(engine)
    if settings["engine"] == "milvus" and settings["milvus_uri"]:
        view, _ = open_source(Config(index_dir=index_dir, **settings))
        target = view.target
        view.close()
        _echo_info(describe(target), as_json)
        return
    with Store.open(index_dir, reader=True) as store:
        meta, counts = store.meta(), store.counts()
        classifiers, label_counts = store.classifiers(), store.label_counts()
    files = sorted(p for p in Path(index_dir).iterdir() if p.is_file())
    sizes = {p.name: p.stat().st_size for p in files}
    cache = Path(index_dir) / "keywords"
    if cache.is_dir():  # the keyword cache: one folder of tantivy's files
        sizes["keywords/"] = sum(p.stat().st_size for p in cache.iterdir() if p.is_file())
    info: dict[str, Any] = {
        "index": str(Path(index_dir).resolve()),
        "model": meta.get("model"),
        "model_revision": meta.get("model_revision"),
        "backend": meta.get("backend") or ("torch" if meta.get("dim") else None),
        "dimension": int(meta["dim"]) if meta.get("dim") else None,
        "files": counts["files"],
        "documents": counts["documents"],
        "chunks": counts["chunks"],
        "index_type": describe_vectors(Path(index_dir), meta) or meta.get("faiss_factory"),
        "ann": meta.get("ann") or "auto",
        "generation": int(meta.get("generation", 0)),
        "schema_version": int(meta.get("schema_version", 0)),
        "chunking": meta.get("chunking"),
        "updated_at": meta.get("updated_at"),
        "classifiers": {f: {**c, "labels": label_counts.get(f, {})} for f, c in classifiers.items()},
        "sizes": sizes,
        "total_bytes": sum(sizes.values()),
        "engine": meta.get("engine") or "local",
    }
    target = recorded_target(meta, settings["milvus_token"])
    if target is not None:
        info["milvus"] = describe(target)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    rows = [
        ("index", info["index"]),
        ("model", f"{info['model']} (revision {info['model_revision'] or '-'})"),
        ("backend", info["backend"] or "-"),
        ("dimension", info["dimension"] or "-"),
        ("documents", f"{info['documents']:,} in {info['files']:,} files"),
        ("chunks", f"{info['chunks']:,}"),
        ("index type", f"{info['index_type']}; --ann {info['ann']} (inner product on L2-normalised vectors)"),
        *([("engine", "local (FAISS + tantivy; SQLite FTS5 as fallback)")] if info["engine"] == "local" else []),
        ("generation", info["generation"]),
        ("schema", f"v{info['schema_version']}"),
        ("updated", info["updated_at"] or "-"),
        *[
            (f"facet {f}", ", ".join(f"{k} {n:,}" for k, n in c["labels"].items()) + f" ({c['path']})")
            for f, c in info["classifiers"].items()
        ],
        (
            "on disk",
            ", ".join(f"{name} {_human(size)}" for name, size in sizes.items())
            + f"; total {_human(info['total_bytes'])}",
        ),
    ]
    for label, value in rows:
        click.echo(f"{label:<11} {value}")
    if "milvus" in info:
        _echo_info(info["milvus"], False)


def _echo_info(milvus: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(milvus, indent=2))
        return
    meta = milvus["meta"]
    for label, value in [
        ("engine", f"milvus at {milvus['milvus_uri']}"),
        ("collection", f"{milvus['collection']} -> {milvus['milvus_collection']}"),
        ("model", meta.get("model", "-")),
        ("rows", f"{milvus['rows']:,} (chunks {json.loads(meta.get('counts', '{}')).get('chunks', 0):,})"),
        ("index type", milvus["milvus_index"]),
        ("generation", milvus["published_generation"]),
    ]:
        click.echo(f"{label:<11} {value}")


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


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
