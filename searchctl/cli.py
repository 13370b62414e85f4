"""The ``searchctl`` command line: each command parses, makes one library call, renders.

Errors are one line on stderr (``error: ...``): exit 2 for a usage mistake, 1 for a
runtime failure, never a traceback for bad input.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import sys
from pathlib import Path

import click

from searchcore.config import Config
from searchcore.errors import SearchctlError

from . import finetune_cli
from .common import (
    backend_option,
    cache_dir,
    index_option,
    notice,
    progress_option,
    show_progress,
    snippet,
    wait_option,
)

# Set before anything imports huggingface_hub: no hub call may ever leave the machine.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class _Group(click.Group):
    """Turns every failure into one line and the right exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = 0
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            code = 2
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
            code = exc.exit_code
        except SearchctlError as exc:
            click.echo(f"error: {exc}", err=True)
            code = exc.exit_code
        except OSError as exc:  # disk full, permissions, a folder where a file should be...
            where = f": {exc.filename}" if exc.filename else ""
            hint = ""
            if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                hint = "; the last committed index is intact: free some space and run the command again"
            click.echo(f"error: {exc.strerror or exc}{where}{hint}", err=True)
            code = 1
        except sqlite3.Error as exc:
            message = str(exc)
            if "full" in message or "disk I/O" in message:
                hint = "; the last committed index is intact: free some space and run the command again"
            elif "readonly" in message or "read-only" in message:
                hint = "; the index folder is read-only for this user: use --index on a folder you can write"
            else:
                hint = "; `searchctl check` says whether the index is sound"
            click.echo(f"error: index.db: {message}{hint}", err=True)
            code = 1
        except (click.Abort, KeyboardInterrupt):
            click.echo("aborted", err=True)
            code = 130
        if standalone_mode:
            sys.exit(code)
        return code


def _model_option(func):
    return click.option(
        "--model",
        metavar="NAME_OR_PATH",
        default=None,
        help="Sentence-transformers model: a local folder, or a name already in the Hugging Face cache. "
        "Default: the index's own model; all-MiniLM-L6-v2 for a new index.",
    )(func)


_MODE_OPTION = click.option(
    "--mode",
    type=click.Choice(["dense", "bm25", "hybrid"]),
    default="hybrid",
    show_default=True,
    help="dense: by meaning; bm25: by keywords; hybrid: both, fused.",
)
_FUSION_OPTION = click.option(
    "--fusion",
    type=click.Choice(["rrf", "weighted"]),
    default="weighted",
    show_default=True,
    help="How hybrid mode fuses: reciprocal ranks, or weighted normalised scores.",
)
_FEEDBACK_OPTION = click.option(
    "--feedback/--no-feedback",
    default=True,
    show_default=True,
    help="Hybrid mode: search the vectors again with the query moved towards its two best hits.",
)


def _search_options(func):
    """--mode, --fusion, --explain and the filters of query."""
    options = [
        _MODE_OPTION,
        _FUSION_OPTION,
        _FEEDBACK_OPTION,
        click.option(
            "--explain", is_flag=True, help="Show each hit's dense and BM25 score and rank and the fused score."
        ),
        click.option(
            "--path",
            "path_filter",
            metavar="GLOB_OR_PREFIX",
            default=None,
            help="Only files matching a glob (*.md, notes/*) or under a folder.",
        ),
        click.option(
            "--type",
            "kinds",
            metavar="KIND",
            multiple=True,
            help="Only this file kind (text, markdown, html, pdf, json, jsonl) or extension (.py); repeatable.",
        ),
        click.option(
            "--after", metavar="DATE", default=None, help="Only files modified on or after DATE (YYYY-MM-DD[THH:MM])."
        ),
        click.option("--before", metavar="DATE", default=None, help="Only files modified before DATE."),
        click.option(
            "--where",
            metavar="FIELD=VALUE",
            multiple=True,
            help="Only records whose metadata FIELD equals VALUE; repeatable.",
        ),
        click.option(
            "--label",
            "labels",
            metavar="[FACET=]LABEL",
            multiple=True,
            help="Only documents a classifier labelled LABEL (see `searchctl label`); repeatable: "
            "labels of one facet combine with OR, facets with AND.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _timestamp(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.UsageError(f"{name} takes a date like 2024-05-31 or 2024-05-31T14:00, not {value!r}") from None
    return moment.timestamp()


def _filters(path_filter, kinds, after, before, where, labels=()):
    from searchcore.search import Filters, parse_labels

    pairs = []
    for item in where:
        field, sep, value = item.partition("=")
        if not sep or not field.strip():
            raise click.UsageError(f"--where takes FIELD=VALUE, not {item!r}")
        pairs.append((field.strip(), value))
    if path_filter and not any(c in path_filter for c in "*?[") and Path(path_filter).exists():
        path_filter = str(Path(path_filter).resolve())  # an existing folder or file: match it exactly
    return Filters(
        path=path_filter,
        kinds=tuple(k.lower() for k in kinds),
        after=_timestamp(after, "--after"),
        before=_timestamp(before, "--before"),
        where=tuple(pairs),
        labels=parse_labels(labels),
    )


def _display_path(path: str) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="searchctl")
def cli() -> None:
    """Semantic search over your own folders of documents.

    Index a folder once (re-runs embed only what changed), then query it by meaning.
    Everything runs offline; the index lives in ./.searchctl unless --index says otherwise.
    """


@cli.command("index")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="PATH...")
@index_option
@_model_option
@click.option(
    "--chunk-size",
    type=int,
    default=None,
    metavar="TOKENS",
    help="Largest chunk in the model's tokens. Default: as large as the model takes (256 for the default).",
)
@click.option(
    "--chunk-overlap",
    type=int,
    default=32,
    show_default=True,
    metavar="TOKENS",
    help="Tokens shared by consecutive chunks of one section.",
)
@click.option("--batch-size", type=int, default=32, show_default=True, help="Texts per forward pass of the model.")
@progress_option
@backend_option
@wait_option
@click.option(
    "--max-file-size",
    "max_file_mb",
    type=click.FloatRange(min=0, min_open=True),
    default=20.0,
    show_default=True,
    metavar="MB",
    help="Skip larger files (counted in the summary) instead of reading them.",
)
@click.option(
    "--classifier",
    "classifier_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Also label each document with this classifier (a facet `query --label` filters on); "
    "the index keeps labelling new documents with it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run's summary as JSON.")
def index_cmd(
    paths,
    index_dir,
    model,
    chunk_size,
    chunk_overlap,
    batch_size,
    progress,
    backend,
    wait,
    max_file_mb,
    classifier_dir,
    as_json,
):
    """Index folders or files (text, Markdown, HTML, PDF, JSON/JSONL records).

    Re-running embeds only new or changed files and removes what was deleted; a run with
    nothing changed never loads the model. Prints one summary line.
    """
    from indexer.build import build_index

    for path in paths:
        if not path.exists():
            raise click.UsageError(f"no such file or folder: {path}")
    config = Config(
        index_dir=index_dir,
        model=model,
        chunk_tokens=chunk_size,
        chunk_overlap=chunk_overlap,
        batch_size=batch_size,
        backend=backend,
        cache_dir=cache_dir(),
        max_file_mb=max_file_mb,
    )
    show = show_progress(progress)
    summary = build_index(config, list(paths), progress=show, wait=wait, classifier=classifier_dir)
    notice(summary.notice)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        click.echo(f"indexed {', '.join(str(p) for p in paths)} into {index_dir}: {summary.line()}")


@cli.command("query")
@click.argument("text")
@index_option
@_model_option
@click.option("-k", "k", type=click.IntRange(min=1, max=1000), default=10, show_default=True, help="Number of hits.")
@click.option("--per-doc", is_flag=True, help="Keep only the best chunk of each document.")
@_search_options
@click.option("--facets", "show_facets", is_flag=True, help="After the hits, count their labels per facet.")
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Print the hits as JSON.")
@click.option(
    "--server",
    metavar="URL",
    default=None,
    help="Ask a running searchd (e.g. http://127.0.0.1:8765) instead of loading the model here.",
)
@click.option(
    "--api-key",
    envvar="SEARCHD_API_KEY",
    default=None,
    metavar="KEY",
    help="API key for --server (or set SEARCHD_API_KEY).",
)
def query_cmd(
    text,
    index_dir,
    model,
    k,
    per_doc,
    mode,
    fusion,
    feedback,
    explain,
    path_filter,
    kinds,
    after,
    before,
    where,
    labels,
    show_facets,
    backend,
    as_json,
    server,
    api_key,
):
    """Search the index: rank, score, path:lines and a snippet per hit (hybrid BM25 + dense by default).

    The score is the cosine similarity to the query (the BM25 score in bm25 mode); the
    order is the mode's own, fused in hybrid mode (see --explain)."""
    if not text.strip():
        raise click.UsageError("the query is empty; give some words to search for")
    filters = _filters(path_filter, kinds, after, before, where, labels)
    if server:
        from .remote import remote_search

        payload = remote_search(
            server, text, k, per_doc, api_key, mode=mode, fusion=fusion, feedback=feedback, filters=filters
        )
        hits = payload["hits"]
    else:
        from searchcore.search import Searcher, facets

        config = Config(index_dir=index_dir, model=model, backend=backend, cache_dir=cache_dir())
        with Searcher(config) as searcher:
            notice(searcher.notice)
            found = searcher.search(
                text, k, per_doc=per_doc, mode=mode, fusion=fusion, feedback=feedback, filters=filters
            )
        hits = [dict(rank=n, **h.to_dict()) for n, h in enumerate(found, 1)]
        payload = {"query": text, "k": k, "mode": mode, "hits": hits, "facets": facets(found)}
    if as_json:
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    if not hits:
        click.echo("no hits")
        return
    for hit in hits:
        labels_ = "".join(f"  [{v['label']}]" for _, v in sorted(hit.get("labels", {}).items()))
        where_ = (
            f"{_display_path(hit['path'])}{'#' + hit['key'] if hit['key'] else ''}:{hit['lines'][0]}-{hit['lines'][1]}"
        )
        title = f"  {hit['title']}" if hit.get("title") else ""
        click.echo(f"{hit['rank']:>3}. {hit['score']:.4f}  {where_}{title}{labels_}")
        if explain:
            click.echo(f"     {_explanation(hit.get('scores', {}))}")
        click.echo(f"     {snippet(hit.get('text') or hit.get('snippet', ''))}")
    if show_facets:
        counts = payload.get("facets") or {}
        if not counts:
            click.echo("facets: none (label the index with `searchctl label --classifier DIR`)")
        for facet, values in counts.items():
            click.echo(f"{facet}: " + ", ".join(f"{label} {n}" for label, n in values.items()))


def _explanation(scores: dict) -> str:
    parts = []
    for name in ("dense", "dense_feedback", "bm25"):
        label = "dense after feedback" if name == "dense_feedback" else name
        rank = scores.get(f"{name}_rank")
        if name not in scores:
            if name != "dense_feedback":
                parts.append(f"{label} -")
        elif rank:
            parts.append(f"{label} {scores[name]:.4f} (rank {int(rank)})")
        elif name == "dense" and "dense_feedback" in scores:
            parts.append(f"{label} {scores[name]:.4f}")  # the cosine; the feedback search ranked
        else:
            parts.append(f"{label} {scores[name]:.4f} (not ranked)")
    if "fused" in scores:
        parts.append(f"fused {scores['fused']:.4f}")
    return "; ".join(parts)


@cli.command("eval")
@index_option
@click.option(
    "--beir",
    "beir_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="A BEIR folder: queries.jsonl and qrels/SPLIT.tsv (index its corpus.jsonl first).",
)
@click.option("--split", default="test", show_default=True, help="Which qrels/SPLIT.tsv of --beir to use.")
@click.option(
    "--queries",
    "queries_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Queries as JSONL with _id and text (instead of --beir).",
)
@click.option(
    "--qrels",
    "qrels_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Judgements as TSV: query-id, corpus-id, score (instead of --beir).",
)
@_MODE_OPTION
@_FUSION_OPTION
@_FEEDBACK_OPTION
@click.option(
    "--compare",
    metavar="SETTING=A,B,...",
    default=None,
    help="Evaluate side by side, e.g. mode=dense,bm25,hybrid, fusion=rrf,weighted or feedback=on,off.",
)
@click.option(
    "--model",
    "models",
    metavar="NAME_OR_PATH",
    multiple=True,
    help="Compare embedding models (repeatable): each gets its own index of the corpus, built or updated here.",
)
@click.option(
    "--corpus",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="What to index for --model (default: corpus.jsonl of --beir).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option(
    "--plot",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write a bar chart of the comparison to this PNG file.",
)
def eval_cmd(
    index_dir, beir_dir, split, queries_file, qrels_file, mode, fusion, feedback, compare, models, corpus, as_json, plot
):
    """Score the index against relevance judgements: nDCG@10, MRR@10, Recall@10/100, MAP (per document).

    With --model (repeatable), compare embedding models instead: dimension, encode speed
    and quality, each on its own index of the corpus."""
    from searchcore.evaluate import load_beir, load_qrels, load_queries

    if beir_dir is not None:
        if queries_file or qrels_file:
            raise click.UsageError("give either --beir or --queries with --qrels, not both")
        queries, qrels = load_beir(beir_dir, split)
    elif queries_file and qrels_file:
        queries, qrels = load_queries(queries_file), load_qrels(qrels_file)
    else:
        raise click.UsageError("give --beir DIR, or --queries FILE and --qrels FILE")
    settings = [{"mode": mode, "fusion": fusion, "feedback": feedback}]
    if compare:
        name, sep, values = compare.partition("=")
        allowed = {"mode": ("dense", "bm25", "hybrid"), "fusion": ("rrf", "weighted"), "feedback": ("on", "off")}
        choices = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or name not in allowed or not choices or any(v not in allowed[name] for v in choices):
            raise click.UsageError(
                f"--compare takes mode=dense,bm25,hybrid, fusion=rrf,weighted or feedback=on,off, not {compare!r}"
            )
        settings = [
            {**settings[0], name: (v == "on") if name == "feedback" else v, "label": f"{name}={v}"} for v in choices
        ]
    if models:
        from indexer.compare import compare_models

        if compare:
            raise click.UsageError("compare either settings (--compare) or models (--model), not both at once")
        corpus = corpus or (beir_dir / "corpus.jsonl" if beir_dir else None)
        if corpus is None or not corpus.exists():
            raise click.UsageError("--model needs the collection to index: --beir DIR with a corpus.jsonl, or --corpus")
        results = compare_models(
            Config(index_dir=index_dir, cache_dir=cache_dir()),
            list(models),
            corpus,
            queries,
            qrels,
            mode=mode,
            fusion=fusion,
            feedback=feedback,
            progress=sys.stderr.isatty(),
        )
    else:
        results = _evaluate_settings(index_dir, queries, qrels, settings)
    if plot:
        from .plots import bar_chart

        bar_chart(results, plot, title=f"{beir_dir.name if beir_dir else queries_file.stem}: {len(qrels)} queries")
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
        return
    width = max(16, *(len(r.label) + 1 for r in results))
    columns = ["nDCG@10", "MRR@10", "R@10", "R@100", "MAP", "queries"]
    header = "".join(f" {c:>8}" for c in columns) + f" {'ms/q':>7}"
    header += " {:>5} {:>9}".format("dim", "chunks/s") if models else ""
    click.echo(f"{'':<{width}}{header}")
    for r in results:
        m = r.metrics
        more = f" {r.extra['dimension']:>5} {r.extra['chunks_per_second']:>9}" if models else ""
        click.echo(
            f"{r.label:<{width}} {m['ndcg@10']:>8.4f} {m['mrr@10']:>8.4f} {m['recall@10']:>8.4f} "
            f"{m['recall@100']:>8.4f} {m['map']:>8.4f} {r.queries:>8} {r.ms_per_query:>7.1f}{more}"
        )


def _evaluate_settings(index_dir, queries, qrels, settings):
    from searchcore.evaluate import evaluate
    from searchcore.search import Searcher

    with Searcher(Config(index_dir=index_dir, cache_dir=cache_dir())) as searcher:
        return [
            evaluate(
                searcher,
                queries,
                qrels,
                mode=st["mode"],
                fusion=st["fusion"],
                feedback=st["feedback"],
                label=st.get("label", f"mode={st['mode']}"),
            )
            for st in settings
        ]


@cli.command("serve")
@index_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; 0.0.0.0 exposes the daemon.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port to listen on.")
@click.option(
    "--api-key",
    envvar="SEARCHD_API_KEY",
    default=None,
    metavar="KEY",
    help="Require 'Authorization: Bearer KEY' on every route but /health (or set SEARCHD_API_KEY).",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
    help="Server log verbosity.",
)
@backend_option
def serve_cmd(index_dir, host, port, api_key, log_level, backend):
    """Run searchd, the HTTP search daemon, over the index (see the README for the routes)."""
    import uvicorn

    from searchcore.store import Store
    from searchd import create_app

    Store.open(index_dir).close()  # fail here, in one line, if there is no index
    if api_key is not None and not api_key.strip():
        raise click.UsageError("the API key is empty; give a non-empty --api-key or unset SEARCHD_API_KEY")
    app = create_app(Config(index_dir=index_dir, backend=backend, cache_dir=cache_dir()), api_key=api_key)
    click.echo(f"searchd serving {Path(index_dir).resolve()} on http://{host}:{port}/", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug")


@cli.command("check")
@index_option
@click.option("--repair", is_flag=True, help="Rebuild what is derived (FAISS file, full-text table) and drop orphans.")
def check_cmd(index_dir, repair):
    """Verify the index: SQLite integrity, chunks vs vectors, full-text rows, the FAISS file of the generation.

    Exits 1 if a problem remains. --repair never re-embeds and never touches the documents."""
    from searchcore.maintenance import check

    report = check(index_dir, repair=repair)
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


@cli.command("compact")
@index_option
def compact_cmd(index_dir):
    """Reclaim space after deletions (VACUUM, full-text optimise, FAISS rewrite, old generations removed)."""
    from searchcore.maintenance import compact

    before, after = compact(index_dir)
    click.echo(f"compacted {index_dir}: {_human(before)} -> {_human(after)} ({before:,} -> {after:,} bytes)")


@cli.command("info")
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def info_cmd(index_dir, as_json):
    """Show the index: path, model, dimension, documents, chunks, index type, sizes on disk."""
    from searchcore.store import Store

    with Store.open(index_dir) as store:
        meta, counts = store.meta(), store.counts()
        classifiers, label_counts = store.classifiers(), store.label_counts()
    files = sorted(p for p in Path(index_dir).iterdir() if p.is_file())
    sizes = {p.name: p.stat().st_size for p in files}
    info = {
        "index": str(Path(index_dir).resolve()),
        "model": meta.get("model"),
        "model_revision": meta.get("model_revision"),
        "backend": meta.get("backend") or ("torch" if meta.get("dim") else None),
        "dimension": int(meta["dim"]) if meta.get("dim") else None,
        "files": counts["files"],
        "documents": counts["documents"],
        "chunks": counts["chunks"],
        "index_type": meta.get("faiss_factory"),
        "generation": int(meta.get("generation", 0)),
        "schema_version": int(meta.get("schema_version", 0)),
        "chunking": meta.get("chunking"),
        "updated_at": meta.get("updated_at"),
        "classifiers": {f: {**c, "labels": label_counts.get(f, {})} for f, c in classifiers.items()},
        "sizes": sizes,
        "total_bytes": sum(sizes.values()),
    }
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
        ("index type", f"{info['index_type']} (inner product on L2-normalised vectors)"),
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


def _human(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


finetune_cli.register(cli)


def main() -> None:
    cli(prog_name="searchctl")
