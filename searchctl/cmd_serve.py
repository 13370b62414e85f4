"""`searchctl serve`: searchd, the HTTP daemon, over an index (and, with --watch, kept current)."""

from __future__ import annotations

import errno
from pathlib import Path

import click

from searchcore.config import Config

from .common import backend_option, cache_dir, engine_options, engine_settings, index_option

__all__ = ["serve_cmd"]


@click.command("serve")
@index_option
@engine_options
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
@click.option(
    "--watch",
    "watch_paths",
    multiple=True,
    type=click.Path(path_type=Path, exists=True),
    metavar="PATH",
    help="Also keep the index current with PATH (repeatable), as `searchctl watch` does.",
)
def serve_cmd(index_dir, host, port, api_key, log_level, backend, watch_paths, **engine):
    """Run searchd, the HTTP search daemon, over the index.

    \b
    Routes (the README has each one's parameters and answers):
      GET /                 the search page
      GET|POST /search      search with one query (or, POST, a batch)
      POST /ask             the cited sentences that answer a question
      POST|GET /mcp         the MCP tools of `searchctl mcp`, as streamable HTTP
      GET /chunks/{id}      the whole text of one hit
      GET /files/{path}     open an indexed file (only files the index holds)
      GET /thumbnails/{path} a small picture of an indexed image
      GET /health           liveness, model, size, generation
      GET /info             what `searchctl info --json` shows of the index
      GET /metrics          Prometheus metrics
      GET /docs             the OpenAPI schema, browsable (/openapi.json)

    With --watch PATH, the daemon also re-indexes PATH after every burst of changes and
    serves each new generation within a second.

    With --engine milvus --milvus-uri URI --collection C it serves a Milvus collection
    with no local index: any number of daemons, on any machines, can serve one collection."""
    import uvicorn

    from searchcore.snapshot import open_records
    from searchd import create_app

    settings = engine_settings(engine)
    if settings["engine"] == "milvus" and settings["milvus_uri"] and watch_paths:
        raise click.UsageError("--watch needs a local index; serve a Milvus collection without --milvus-uri instead")
    stop = _start_watching(index_dir, list(watch_paths), backend) if watch_paths else None
    # Fail here, in one line, when there is no index (or its Milvus collection cannot be had).
    records = open_records(Config(index_dir=index_dir, **settings))
    served = records.source  # the index folder, or milvus:URI/COLLECTION
    records.close()
    if api_key is not None and not api_key.strip():
        raise click.UsageError("the API key is empty; give a non-empty --api-key or unset SEARCHD_API_KEY")
    app = create_app(
        Config(index_dir=index_dir, backend=backend, cache_dir=cache_dir(), **settings), api_key=api_key, host=host
    )
    _check_port(host, port)
    click.echo(f"searchd serving {served} on http://{host}:{port}/", err=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug")
    finally:
        if stop is not None:
            stop.set()


def _check_port(host: str, port: int) -> None:
    """One line, before anything says "serving", when the address cannot be had."""
    import socket

    from searchcore.errors import SearchctlError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise click.UsageError(f"--host {host!r} is not an address this machine can bind ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            reason = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
            raise SearchctlError(
                f"port {port} on {host} {reason}; stop what holds it, or choose another with --port"
            ) from None


def _start_watching(index_dir: Path, paths: list[Path], backend: str | None):
    """Index ``paths`` now (so the daemon has an index to open), then keep them current
    from a background thread; returns the event that stops it."""
    import threading

    from indexer.build import build_index
    from indexer.watch import watch

    from .cmd_index import run_line

    config = Config(index_dir=index_dir, backend=backend, cache_dir=cache_dir())
    click.echo(f"indexed for --watch: {build_index(config, paths, wait=True).line()}", err=True)
    stop = threading.Event()

    def loop() -> None:
        try:
            watch(config, paths, stop=stop, on_run=lambda run: click.echo(f"watch: {run_line(run)}", err=True))
        except Exception as exc:  # the daemon goes on serving what is indexed
            click.echo(f"error: watching stopped: {exc}", err=True)

    threading.Thread(target=loop, name="searchd-watch", daemon=True).start()
    return stop
