"""create_app(config) -> the searchd FastAPI application.

The index is opened once, in the lifespan, and shared through lifespan state; a
background task polls for new generations (hot reload). The routes are in
``searchd.routes``; the ASGI guard in front of them (API key, body size limit, metrics)
in ``searchd.guard``.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from searchcore.config import Config
from searchcore.errors import NoSuchFieldError, SearchctlError, UsageError

from .guard import Guard, json_error
from .holder import IndexHolder
from .metrics import Metrics
from .problems import plain_errors
from .routes import router
from .tools import mcp_server

__all__ = ["create_app"]

log = logging.getLogger("searchd")


def create_app(
    config: Config,
    *,
    api_key: str | None = None,
    embedder=None,
    reload_interval: float = 0.25,
    host: str = "127.0.0.1",
) -> FastAPI:
    """The searchd application for the index at ``config.index_dir``.

    ``embedder`` lets a caller share an already loaded model; ``reload_interval`` is how
    often (seconds) the daemon looks for a new index generation; ``host`` is the address
    it is served on (on a loopback address, /mcp refuses requests naming another host: a
    web page cannot reach it through DNS rebinding).
    """
    metrics = Metrics()
    # The MCP server at /mcp: stateless streamable HTTP, plain JSON answers.
    assistant = mcp_server(lambda: app.state.holder)
    mcp_routes = assistant.streamable_http_app(
        streamable_http_path="/mcp", stateless_http=True, json_response=True, host=host
    ).routes

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        holder = IndexHolder(config, embedder)

        async def watch() -> None:
            while True:
                await asyncio.sleep(reload_interval)
                try:
                    if await holder.run(holder.refresh):
                        log.info("serving index generation %d", holder.searcher.generation)
                except Exception:  # a half-written file, a busy database: try again next tick
                    log.exception("reload failed; still serving generation %d", holder.searcher.generation)

        task = asyncio.create_task(watch())
        app.state.holder = holder
        try:
            async with assistant.session_manager.run():
                yield {"holder": holder}
        finally:
            task.cancel()
            holder.close()

    app = FastAPI(
        title="searchd",
        summary="Semantic search over a searchctl index.",
        version="0.1.0",
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # One plain line naming each bad parameter and what it takes (not FastAPI's list of errors).
        return JSONResponse({"detail": plain_errors(exc.errors())}, status_code=422)

    @app.exception_handler(SearchctlError)
    async def _library_error(request: Request, exc: SearchctlError) -> JSONResponse:
        # a filter on a field no document has: nothing found, said in the detail
        status = 404 if isinstance(exc, NoSuchFieldError) else 400 if isinstance(exc, UsageError) else 503
        return json_error(status, str(exc))

    app.state.config = config
    app.state.metrics = metrics
    app.include_router(router)
    app.router.routes.extend(mcp_routes)
    app.add_middleware(Guard, api_key=api_key, metrics=metrics)
    return app
