"""The MCP server: searchctl's index as tools an assistant can call.

``mcp_server(holder)`` builds a Model Context Protocol server (the official SDK's
``MCPServer``) whose tools read the index an ``IndexHolder`` serves:

- ``search``: the hits of one query, in the one shape of ``searchcore.results``;
- ``read``: lines of an indexed file or record (``path``: a hit's ``handle``);
- ``files``: the indexed files under a prefix;
- ``status``: documents, chunks, model, last run and the files passed over;
- ``ask``: the cited sentences that answer a question (``searchcore.answers``).

``searchctl mcp`` runs it over stdio (what desktop assistants launch); searchd mounts it
as streamable HTTP at ``/mcp``, behind the daemon's API key and body limit. Every tool
only reads; a bad argument comes back as a tool error with the one line the command line
would print, and the server goes on serving.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import Field

from searchcore.answers import ASK_K, ask
from searchcore.config import Config
from searchcore.errors import SearchctlError
from searchcore.info import index_status
from searchcore.options import MAX_K, Filters, SearchOptions, check_query, parse_where
from searchcore.reading import file_list, read_file
from searchcore.results import result_object

from .holder import IndexHolder
from .problems import plain_errors
from .schemas import MAX_QUERY_CHARS

__all__ = ["mcp_server", "serve_stdio", "TOOLS", "INSTRUCTIONS"]

logger = logging.getLogger("searchd")

TOOLS = ("search", "read", "files", "status", "ask")
INSTRUCTIONS = (
    "Search the user's own indexed folders by meaning and keywords. Use `search` to find passages, `read` with a "
    "hit's `handle` as `path` and line numbers to see more of a file, `ask` for the sentences that answer a "
    "question with their citations, `files` to list what is indexed and `status` to see the index's size, model "
    "and last run."
)


class ToolFailure(Exception):
    """A bad argument or an index that cannot answer: the one line the client reads."""


def _query(text: str) -> str:
    check_query(text)
    if len(text) > MAX_QUERY_CHARS:
        raise ToolFailure(f"the query is {len(text):,} characters; give at most {MAX_QUERY_CHARS:,}")
    return text


def _k(k: int, most: int = MAX_K) -> int:
    if not 1 <= k <= most:
        raise ToolFailure(f"k must be between 1 and {most}, not {k}")
    return k


def mcp_server(holder: Callable[[], IndexHolder]):
    """The MCP server over the index that ``holder()`` serves (called on each tool call,
    so a daemon's hot reload is seen at once)."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from pydantic import ValidationError

    class Server(MCPServer):
        async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
            """Every failure as one line, worded as the command line words it."""
            if name not in TOOLS:
                raise ToolError(f"error: there is no tool {name[:100]!r}; the tools are {', '.join(TOOLS)}")
            try:
                return await super().call_tool(name, arguments, context)
            except ToolError as exc:
                cause = exc.__cause__
                if isinstance(cause, ValidationError):  # arguments that do not fit the tool's schema
                    message = plain_errors([{**e, "loc": ("arguments", *e["loc"])} for e in cause.errors()])
                elif isinstance(cause, ToolFailure | SearchctlError):
                    message = str(cause)
                else:
                    raise
                raise ToolError(f"error: {message}") from None

    server: Any = Server("searchctl", instructions=INSTRUCTIONS, version="0.1.0", log_level="WARNING")

    def tool(func: Callable[..., Awaitable[Any]]) -> None:
        @functools.wraps(func)
        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return await func(*args, **kwargs)
            except SearchctlError as exc:  # the library's own one-line errors
                raise ToolFailure(str(exc)) from None

        server.add_tool(call, name=func.__name__, description=func.__doc__, structured_output=True)

    async def search(
        query: Annotated[str, Field(description="What to find, in plain words (a question, a phrase, keywords).")],
        k: Annotated[int, Field(description=f"How many hits (1-{MAX_K}).")] = 10,
        mode: Annotated[
            Literal["hybrid", "dense", "bm25"],
            Field(description="hybrid: meaning and keywords fused (best); dense: meaning only; bm25: keywords only."),
        ] = "hybrid",
        where: Annotated[
            dict[str, str] | None,
            Field(description='Only records whose metadata FIELD equals VALUE, e.g. {"lang": "de"}.'),
        ] = None,
        per_doc: Annotated[bool, Field(description="One hit per document, with its next best passages.")] = False,
        path: Annotated[str | None, Field(description="Only files matching a glob (*.md) or under a folder.")] = None,
    ) -> dict[str, Any]:
        """Search the indexed folders. Each hit has the file (path, relpath, title), the lines it spans, a score,
        the snippet that matched and a `handle`: pass it to `read` as `path` with start_line/end_line to see more."""
        options = SearchOptions(
            k=_k(k),
            mode=mode,
            per_doc=per_doc,
            filters=Filters(path=path or None, where=parse_where([f"{f}={v}" for f, v in (where or {}).items()])),
        )
        current = holder()
        searcher = current.searcher
        started = time.perf_counter()
        found = (await current.search(searcher, [_query(query)], replace(options, k=k + 1)))[0]
        took = (time.perf_counter() - started) * 1000
        return result_object(
            query, found, options, places=searcher.places, generation=searcher.generation, took_ms=took
        )

    async def read(
        path: Annotated[
            str,
            Field(description="A hit's handle: its file relative to the indexed folder (PATH#KEY for a record)."),
        ],
        start_line: Annotated[int, Field(description="First line to read (1-based).")] = 1,
        end_line: Annotated[int | None, Field(description="Last line to read (inclusive); the end by default.")] = None,
    ) -> dict[str, Any]:
        """Read lines of an indexed file (or of one record, PATH#KEY), as it was indexed: the lines a hit names are
        the lines read here. Only files the index holds can be read; at most 400 lines come back at once (`more`
        says whether the file goes on)."""
        current = holder()
        searcher = current.searcher
        return await current.run(read_file, searcher.records, searcher.places, path, start_line, end_line)

    async def files(
        prefix: Annotated[
            str, Field(description="Only files whose path (relative to the indexed folder) starts so.")
        ] = "",
    ) -> dict[str, Any]:
        """List the indexed files (relative path, kind, documents, title) under a prefix."""
        current = holder()
        searcher = current.searcher
        return await current.run(file_list, searcher.records, searcher.places, prefix)

    async def status() -> dict[str, Any]:
        """What is indexed: documents, chunks, files, the model, the last run, and the files the runs passed over
        with the reason."""
        current = holder()
        return await current.run(index_status, current.config)

    async def ask_tool(
        question: Annotated[str, Field(description="The question, in plain words.")],
        k: Annotated[int, Field(description="How many documents to take sentences from (1-20).")] = ASK_K,
    ) -> dict[str, Any]:
        """The sentences of the indexed files that best answer a question, each with its citation [n] path:lines.
        Quote them with their citations; `read` shows the lines around them."""
        current = holder()
        answer = await current.run(functools.partial(ask, current.searcher, _query(question), k=_k(k, 20)))
        return answer.to_dict()

    ask_tool.__name__ = "ask"
    for func in (search, read, files, status, ask_tool):
        tool(func)
    return server


def serve_stdio(config: Config, refresh_interval: float = 1.0) -> None:
    """Run the MCP server over stdin/stdout until the client closes them (``searchctl
    mcp``): one IndexHolder, refreshed to each new generation as it lands."""
    import anyio

    holder = IndexHolder(config)
    server = mcp_server(lambda: holder)

    async def main() -> None:
        async def follow() -> None:
            while True:
                await anyio.sleep(refresh_interval)
                try:
                    await holder.run(holder.refresh)
                except Exception:  # a half-written file, a busy database: try again next tick
                    logger.exception("reload failed; still serving generation %d", holder.searcher.generation)

        async with anyio.create_task_group() as group:
            group.start_soon(follow)
            await server.run_stdio_async()
            group.cancel_scope.cancel()

    try:
        anyio.run(main)
    finally:
        holder.close()
