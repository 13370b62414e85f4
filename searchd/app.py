"""create_app(config) -> the searchd FastAPI application.

The index is opened once, in the lifespan, and shared through lifespan state; a
background task polls for new generations (hot reload). One ASGI guard in front of the
routes enforces the API key, the body size limit and records the metrics, so that those
rules also hold for 404s, /docs and anything added later.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, StringConstraints

from searchcore.config import Config
from searchcore.errors import SearchctlError, UsageError
from searchcore.search import Filters, Hit, facets, parse_labels

from .holder import IndexHolder
from .metrics import Metrics
from .schemas import (
    LABEL_FILTER,
    MAX_BODY_BYTES,
    MAX_K,
    MAX_QUERY_CHARS,
    MAX_TIME,
    NON_BLANK,
    BatchResponse,
    ChunkOut,
    ErrorOut,
    HealthOut,
    HitOut,
    SearchRequest,
    SearchResponse,
)

__all__ = ["create_app"]

log = logging.getLogger("searchd")
_PAGE = Path(__file__).with_name("static") / "index.html"
_SNIPPET_CHARS = 300
# Every error body is {"detail": "one line"}, 422 included (not FastAPI's list of errors).
_ERRORS = {
    400: {"model": ErrorOut},
    401: {"model": ErrorOut},
    413: {"model": ErrorOut},
    422: {"model": ErrorOut, "description": "Invalid parameters or body"},
}


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET_CHARS else flat[: _SNIPPET_CHARS - 1].rstrip() + "…"


def _hits(hits: list[Hit], explain: bool) -> list[HitOut]:
    return [
        HitOut(
            rank=rank,
            chunk_id=h.chunk_id,
            score=h.score,
            path=h.path,
            key=h.key,
            source=h.source,
            title=h.title,
            lines=h.lines,
            snippet=_snippet(h.text),
            scores=h.scores if explain else {},
            labels=h.labels,
        )
        for rank, h in enumerate(hits, 1)
    ]


def _as_json(model: BaseModel) -> Response:
    """The model as JSON, serialised once by pydantic's core: the response_model on the
    route still documents it, but FastAPI does not validate and encode it a second time."""
    return Response(model.model_dump_json(), media_type="application/json")


def _json_error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _authorized(header: str, api_key: str) -> bool:
    """Bearer KEY, or Basic with KEY as the password (what a browser sends after a prompt)."""
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        supplied = value.strip()
    elif scheme == "basic":
        try:
            supplied = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    else:
        return False
    return hmac.compare_digest(supplied.encode(), api_key.encode())


class _Guard:
    """Pure ASGI: API key, body size limit, request metrics."""

    def __init__(self, app, *, api_key: str | None, metrics: Metrics):
        self.app = app
        self.api_key = api_key
        self.metrics = metrics

    @staticmethod
    def _route(scope) -> str:
        # The router records the matched route in the scope; the template, not the raw
        # path, keeps the metric's label set small.
        return getattr(scope.get("route"), "path", "unmatched")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = {"code": 500}

        async def send_recording(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self._handle(scope, receive, send_recording)
        finally:
            self.metrics.observe(self._route(scope), scope["method"], status["code"], time.perf_counter() - started)

    async def _handle(self, scope, receive, send):
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.api_key and scope["path"] != "/health":
            if not _authorized(headers.get("authorization", ""), self.api_key):
                challenge = 'Basic realm="searchd"' if scope["path"] == "/" else "Bearer"
                response = _json_error(
                    401, "missing or wrong API key; send 'Authorization: Bearer KEY'", {"WWW-Authenticate": challenge}
                )
                return await response(scope, receive, send)
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return await self.app(scope, receive, send)
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                return await _json_error(400, "invalid Content-Length header")(scope, receive, send)
            if int(declared) > MAX_BODY_BYTES:
                return await _json_error(413, f"request body over {MAX_BODY_BYTES} bytes")(scope, receive, send)
        # Read the body here, so that a body without Content-Length is held to the limit too.
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY_BYTES:
                return await _json_error(413, f"request body over {MAX_BODY_BYTES} bytes")(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        return await self.app(scope, replay, send)


def create_app(
    config: Config,
    *,
    api_key: str | None = None,
    embedder=None,
    reload_interval: float = 0.25,
) -> FastAPI:
    """The searchd application for the index at ``config.index_dir``.

    ``embedder`` lets a caller share an already loaded model; ``reload_interval`` is how
    often (seconds) the daemon looks for a new index generation.
    """
    metrics = Metrics()

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
        try:
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
    page = _PAGE.read_text(encoding="utf-8")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # One line naming each bad field and why; never the input itself: echoing it back
        # could be huge, and an input such as 1e309 (infinity) is not even valid JSON.
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ())[1:]) or "body"
            problems.append(f"{where}: {str(error.get('msg', 'invalid')).removeprefix('Value error, ')}")
        return JSONResponse({"detail": "; ".join(dict.fromkeys(problems))}, status_code=422)

    @app.exception_handler(SearchctlError)
    async def _library_error(request: Request, exc: SearchctlError) -> JSONResponse:
        return _json_error(400 if isinstance(exc, UsageError) else 503, str(exc))

    async def run_search(request: Request, queries: list[str], k: int, per_doc: bool, options: dict):
        holder = request.state.holder
        searcher = holder.searcher  # one reference for the whole request
        started = time.perf_counter()
        explain = options.pop("explain")
        results = await holder.search(searcher, queries, k, per_doc, options)
        took = (time.perf_counter() - started) * 1000
        out = [
            SearchResponse(
                query=q,
                k=k,
                per_doc=per_doc,
                mode=options["mode"],
                generation=searcher.generation,
                took_ms=round(took, 3),
                hits=_hits(hits, explain),
                facets=facets(hits),
            )
            for q, hits in zip(queries, results)
        ]
        return out, searcher.generation, took

    def options(
        mode, fusion, feedback, explain, path, kinds, after, before, where: dict[str, str], labels: list[str]
    ) -> dict:
        try:
            label_pairs = parse_labels(labels)
        except UsageError as exc:
            raise HTTPException(422, str(exc)) from None
        filters = Filters(
            path=path or None,
            kinds=tuple(k.lower() for k in kinds),
            after=after,
            before=before,
            where=tuple(where.items()),
            labels=label_pairs,
        )
        return {
            "mode": mode,
            "fusion": fusion,
            "feedback": feedback,
            "explain": explain,
            "filters": filters if filters else None,
        }

    @app.get("/search", response_model=SearchResponse, responses=_ERRORS, summary="Search with one query")
    async def search_get(
        request: Request,
        q: Annotated[
            str, Query(max_length=MAX_QUERY_CHARS, pattern=NON_BLANK, description="The query text (not blank).")
        ],
        k: Annotated[int, Query(ge=1, le=MAX_K, description="Number of hits.")] = 10,
        per_doc: Annotated[bool, Query(description="Keep only the best chunk of each document.")] = False,
        mode: Annotated[Literal["dense", "bm25", "hybrid"], Query(description="Retrieval mode.")] = "hybrid",
        fusion: Annotated[Literal["rrf", "weighted"], Query(description="Fusion of hybrid mode.")] = "weighted",
        feedback: Annotated[
            bool, Query(description="Hybrid mode: search the vectors again, moved towards the two best hits.")
        ] = True,
        explain: Annotated[bool, Query(description="Give each hit's dense and BM25 scores and ranks.")] = False,
        path: Annotated[str | None, Query(max_length=1000, description="Glob or path prefix.")] = None,
        type: Annotated[list[str], Query(max_length=20, description="File kinds or extensions.")] = [],  # noqa: B006
        after: Annotated[
            float | None, Query(ge=-MAX_TIME, le=MAX_TIME, description="Modified at or after (Unix time).")
        ] = None,
        before: Annotated[
            float | None, Query(ge=-MAX_TIME, le=MAX_TIME, description="Modified before (Unix time).")
        ] = None,
        where: Annotated[
            list[Annotated[str, StringConstraints(pattern=r"^[^=]+=")]],
            Query(max_length=20, description="FIELD=VALUE on record metadata."),
        ] = [],  # noqa: B006
        label: Annotated[
            list[Annotated[str, StringConstraints(max_length=400, pattern=LABEL_FILTER)]],
            Query(max_length=20, description="LABEL or FACET=LABEL from the index's classifiers."),
        ] = [],  # noqa: B006
    ) -> SearchResponse:
        if not q.strip():
            raise HTTPException(422, "the query is empty; give some words to search for")
        pairs = {}
        for item in where:
            field, sep, value = item.partition("=")
            if not sep or not field:
                raise HTTPException(422, f"where takes FIELD=VALUE, not {item!r}")
            pairs[field] = value
        opts = options(mode, fusion, feedback, explain, path, type, after, before, pairs, label)
        return _as_json((await run_search(request, [q], k, per_doc, opts))[0][0])

    @app.post(
        "/search",
        response_model=SearchResponse | BatchResponse,
        responses=_ERRORS,
        summary="Search with one query (q) or a batch (queries)",
    )
    async def search_post(request: Request, body: SearchRequest) -> SearchResponse | BatchResponse:
        opts = options(
            body.mode,
            body.fusion,
            body.feedback,
            body.explain,
            body.path,
            body.type,
            body.after,
            body.before,
            body.where,
            body.label,
        )
        if body.q is not None:
            return _as_json((await run_search(request, [body.q], body.k, body.per_doc, opts))[0][0])
        results, generation, took = await run_search(request, body.queries, body.k, body.per_doc, opts)
        return _as_json(
            BatchResponse(
                k=body.k, per_doc=body.per_doc, generation=generation, took_ms=round(took, 3), results=results
            )
        )

    @app.get("/chunks/{chunk_id}", response_model=ChunkOut, responses={**_ERRORS, 404: {"model": ErrorOut}})
    def chunk(request: Request, chunk_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)]) -> ChunkOut:
        """The full text and metadata of one chunk (a hit)."""
        searcher = request.state.holder.searcher
        record = searcher.store.chunk_records([chunk_id]).get(chunk_id)
        if record is None:
            raise HTTPException(404, f"no chunk {chunk_id} in index generation {searcher.generation}")
        return ChunkOut(
            chunk_id=record.chunk_id,
            doc_id=record.doc_id,
            path=record.path,
            key=record.key,
            source=f"{record.path}#{record.key}" if record.key else record.path,
            title=record.title,
            lines=(record.line_start, record.line_end),
            chars=(record.char_start, record.char_end),
            text=record.text,
            metadata=record.metadata,
            generation=searcher.generation,
        )

    @app.get("/health", response_model=HealthOut)
    def health(request: Request) -> HealthOut:
        """Liveness and what is being served: model, documents, chunks, generation. Never needs the API key."""
        searcher = request.state.holder.searcher
        return HealthOut(
            status="ok",
            model=searcher.embedder.name,
            documents=searcher.counts["documents"],
            chunks=searcher.counts["chunks"],
            generation=searcher.generation,
            index=str(Path(config.index_dir).resolve()),
        )

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus(request: Request) -> PlainTextResponse:
        """Prometheus text format: requests and latency by route and status, index size."""
        body, content_type = metrics.render(request.state.holder.searcher, Path(config.index_dir))
        return PlainTextResponse(body, media_type=content_type)

    @app.get("/", response_class=HTMLResponse, include_in_schema=True)
    def search_page() -> HTMLResponse:
        """The search page: a query box, ranked results, a click opens the chunk."""
        return HTMLResponse(page)

    app.add_middleware(_Guard, api_key=api_key, metrics=metrics)
    return app
