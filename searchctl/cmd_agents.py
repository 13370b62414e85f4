"""Commands for assistants and quick answers: ask, mcp."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import click

from searchcore.config import Config
from searchcore.options import EMPTY_QUERY, is_blank

from .cmd_generate import generator_option
from .common import backend_option, cache_dir, engine_options, engine_settings, index_option, notice
from .options import search_options, to_search_options

__all__ = ["ask_cmd", "mcp_cmd", "CLIENTS"]


@click.command("ask")
@click.argument("question")
@index_option
@engine_options
@click.option("-k", "k", type=click.IntRange(1, 20), default=5, show_default=True, help="Documents to quote from.")
@click.option(
    "--sentences", type=click.IntRange(1, 20), default=4, show_default=True, help="The most sentences quoted."
)
@click.option(
    "--per-document",
    type=click.IntRange(1, 20),
    default=1,
    show_default=True,
    help="The most sentences quoted from one document (neighbours are merged into one quote).",
)
@search_options("mode", "path", "type", "where", "label")
@click.option("--generate", is_flag=True, help="Also write a short answer from the quotes with the generator.")
@generator_option
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
def ask_cmd(question, index_dir, k, sentences, per_document, generate, model, backend, as_json, **values):
    """Answer QUESTION with the sentences of the indexed files that answer it, each cited [n] path:lines.

    The question is searched (hybrid by default, one hit per document); each sentence of
    the best passages is scored against it by meaning (the index's own model) and by its
    words; the best are quoted, neighbours merged. No generator runs unless --generate:
    then the generator (the default SmolLM2-135M-Instruct, or --generator) writes a short
    answer from the quotes alone, keeping their [n] marks (the README says how far that
    small model can be trusted)."""
    from searchcore.answers import ask, write_answer
    from searchcore.search import Searcher

    if is_blank(question):
        raise click.UsageError(EMPTY_QUERY.replace("query", "question"))
    engine = engine_settings(values)
    options = to_search_options(values)
    config = Config(index_dir=index_dir, backend=backend, cache_dir=cache_dir(), **engine)
    with Searcher(config) as searcher:
        notice(searcher.notice)
        answer = ask(searcher, question, k=k, max_sentences=sentences, per_document=per_document, options=options)
    if generate:
        from searchcore.generator import Generator

        answer = write_answer(answer, Generator(model, cache_dir=cache_dir()))
    if as_json:
        click.echo(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
        return
    if not answer.quotes:
        click.echo("nothing in the index answers that; try other words, or `searchctl query` for the nearest hits")
        return
    if answer.answer is not None:
        click.echo(f"{answer.answer or '(the generator wrote nothing)'}\n")
    for quote in answer.quotes:
        click.echo(click.style(quote.citation, bold=sys.stdout.isatty()))
        click.echo(f"    {quote.text}")


def _command() -> list[str]:
    """How an assistant starts this searchctl: its script's absolute path where there is one."""
    beside = Path(sys.executable).with_name("searchctl")
    found = str(beside) if beside.exists() else shutil.which("searchctl")
    return [str(Path(found).resolve())] if found else [str(Path(sys.executable).resolve()), "-m", "searchctl"]


def _entry(index_dir: Path, engine_args: list[str]) -> dict:
    command = _command()
    args = [*command[1:], "mcp", "--index", str(Path(index_dir).resolve()), *engine_args]
    return {"command": command[0], "args": args}


# client -> (what the snippet is, where it goes, how the entry is wrapped)
CLIENTS = {
    "claude-desktop": "claude_desktop_config.json (Settings > Developer > Edit Config)",
    "claude-code": ".mcp.json in the project (or: claude mcp add-json searchctl '<the entry>')",
    "cursor": "~/.cursor/mcp.json (or .cursor/mcp.json in the project)",
    "vscode": ".vscode/mcp.json in the workspace",
    "stdio": "any MCP client that launches a stdio server: the command and its arguments",
}


def client_config(client: str, index_dir: Path, engine_args: list[str]) -> dict:
    """The JSON ``client`` reads to launch ``searchctl mcp`` on this index."""
    entry = _entry(index_dir, engine_args)
    if client == "vscode":
        return {"servers": {"searchctl": {"type": "stdio", **entry}}}
    if client == "claude-code":
        return {"mcpServers": {"searchctl": {"type": "stdio", **entry, "env": {}}}}
    if client == "stdio":
        return entry
    return {"mcpServers": {"searchctl": entry}}


@click.command("mcp")
@index_option
@engine_options
@backend_option
@click.option(
    "--print-config",
    "client",
    type=click.Choice(list(CLIENTS)),
    default=None,
    help="Print the JSON that CLIENT reads to start this server (absolute paths filled in), and exit.",
)
def mcp_cmd(index_dir, backend, client, **engine):
    """Serve the index to AI assistants over the Model Context Protocol (stdio).

    \b
    Tools (the README has each one's arguments and answers):
      search(query, k, mode, where, per_doc, path)  hits with a handle to read more
      read(path, start_line, end_line)              lines of an indexed file
      files(prefix)                                 the indexed files
      status()                                      size, model, last run, skipped files
      ask(question, k)                              the cited sentences that answer it

    An assistant launches it; `--print-config CLIENT` prints the entry to paste into
    CLIENT's settings (claude-desktop, claude-code, cursor, vscode, stdio). It only reads
    the index and sees each new generation as it lands. searchd serves the same tools as
    streamable HTTP at /mcp."""
    settings = engine_settings(engine)
    if client is not None:
        engine_args = []
        if settings["engine"] == "milvus":
            engine_args = ["--engine", "milvus"]
            engine_args += ["--milvus-uri", settings["milvus_uri"]] if settings["milvus_uri"] else []
            engine_args += ["--collection", settings["collection"]] if settings["collection"] else []
        click.echo(json.dumps(client_config(client, index_dir, engine_args), indent=2))
        click.echo(f"paste into {CLIENTS[client]}", err=True)
        return
    from searchcore.snapshot import open_records
    from searchd.tools import serve_stdio

    config = Config(index_dir=index_dir, backend=backend, cache_dir=cache_dir(), **settings)
    open_records(config).close()  # no index: one line now, not a broken server later
    serve_stdio(config)
