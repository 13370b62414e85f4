"""Commands that read an index: query, eval."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from searchcore.config import Config
from searchcore.options import EMPTY_QUERY, FUSIONS, MODES, SearchOptions, is_blank

from .common import (
    backend_option,
    cache_dir,
    display_path,
    engine_options,
    engine_settings,
    index_option,
    model_option,
    notice,
)
from .options import search_options, to_search_options

__all__ = ["query_cmd", "eval_cmd"]


@click.command("query")
@click.argument("text")
@index_option
@engine_options
@model_option
@search_options()
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
def query_cmd(text, index_dir, model, show_facets, backend, as_json, server, api_key, **values):
    """Search the index: rank, score, path:lines and a snippet per hit (hybrid BM25 + dense by default).

    The score is the cosine similarity to the query (the BM25 score in bm25 mode); the
    order is the mode's own, fused in hybrid mode (see --explain)."""
    if is_blank(text):
        raise click.UsageError(EMPTY_QUERY)
    engine = engine_settings(values)
    options = to_search_options(values)
    if server:
        from .remote import remote_search

        payload = remote_search(server, text, options, api_key)
    else:
        payload = _search_here(
            text, options, Config(index_dir=index_dir, model=model, backend=backend, cache_dir=cache_dir(), **engine)
        )
    if as_json:
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    _print_hits(payload["hits"], options.explain, bold=sys.stdout.isatty())
    if show_facets:
        counts = payload.get("facets") or {}
        if not counts:
            click.echo("facets: none (label the index with `searchctl label --classifier DIR`)")
        for facet, counted in counts.items():
            click.echo(f"{facet}: " + ", ".join(f"{label} {n}" for label, n in counted.items()))


def _search_here(text: str, options: SearchOptions, config: Config) -> dict[str, Any]:
    from searchcore.results import search_results
    from searchcore.search import Searcher

    with Searcher(config) as searcher:
        notice(searcher.notice)
        return search_results(searcher, [text], options)[0]


def _marked(text: str, spans: list, bold: bool) -> str:
    """``text`` with the query's words in bold on a terminal (as it is elsewhere)."""
    if not bold or not spans:
        return text
    out, cursor = [], 0
    for start, end in spans:
        out += [text[cursor:start], click.style(text[start:end], bold=True)]
        cursor = end
    return "".join(out) + text[cursor:]


def _print_hits(hits: list[dict], explain: bool, bold: bool = False) -> None:
    if not hits:
        click.echo("no hits")
        return
    for hit in hits:
        labels = "".join(f"  [{v['label']}]" for _, v in sorted(hit.get("labels", {}).items()))
        where = (
            f"{display_path(hit['path'])}{'#' + hit['key'] if hit['key'] else ''}:{hit['lines'][0]}-{hit['lines'][1]}"
        )
        title = f"  {hit['title']}" if hit.get("title") else ""
        click.echo(f"{hit['rank']:>3}. {hit['score']:.4f}  {where}{title}{labels}")
        if explain:
            click.echo(f"     {_explanation(hit.get('scores', {}))}")
        click.echo(f"     {_marked(hit['snippet'], hit.get('highlights', []), bold)}")


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


@click.command("eval")
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
@search_options("mode", "fusion", "feedback")
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
    settings = _settings(compare, {"mode": mode, "fusion": fusion, "feedback": feedback})
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
    for warning in dict.fromkeys(w for r in results for w in r.warnings):
        click.echo(f"warning: {warning}", err=True)
    if plot:
        from .plots import bar_chart

        bar_chart(results, plot, title=f"{beir_dir.name if beir_dir else queries_file.stem}: {len(qrels)} queries")
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
        return
    _print_results(results, with_models=bool(models))


def _settings(compare: str | None, base: dict) -> list[dict]:
    """The settings an evaluation runs: ``base``, or one per value of ``--compare``."""
    if not compare:
        return [base]
    name, sep, values = compare.partition("=")
    allowed = {"mode": MODES, "fusion": FUSIONS, "feedback": ("on", "off")}
    choices = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or name not in allowed or not choices or any(v not in allowed[name] for v in choices):
        raise click.UsageError(
            f"--compare takes mode={','.join(MODES)}, fusion={','.join(FUSIONS)} or feedback=on,off, not {compare!r}"
        )
    return [{**base, name: (v == "on") if name == "feedback" else v, "label": f"{name}={v}"} for v in choices]


def _print_results(results: list, with_models: bool) -> None:
    width = max(16, *(len(r.label) + 1 for r in results))
    columns = ["nDCG@10", "MRR@10", "R@10", "R@100", "MAP", "queries"]
    header = "".join(f" {c:>8}" for c in columns) + f" {'ms/q':>7}"
    header += " {:>5} {:>9}".format("dim", "chunks/s") if with_models else ""
    click.echo(f"{'':<{width}}{header}")
    for r in results:
        m = r.metrics
        more = f" {r.extra['dimension']:>5} {r.extra['chunks_per_second']:>9}" if with_models else ""
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
