"""The routes of searchd: /search (GET and POST), /ask, /chunks/{id}, /files/{path},
/thumbnails/{path}, /health, /info, /metrics, the page.

Each route reads the shared IndexHolder from the request's lifespan state, takes one
reference to its current Searcher for the whole request (so a hot reload never mixes two
generations in one answer) and builds its response from the library's results.
"""

from __future__ import annotations

import functools
import io
import json
import mimetypes
import os
import stat
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import HTTPException
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from pydantic import BaseModel

from searchcore.answers import ask
from searchcore.config import Config
from searchcore.errors import UsageError
from searchcore.images import NotAnImage, open_image
from searchcore.info import index_info
from searchcore.options import SearchOptions
from searchcore.results import result_object

from .metrics import Metrics
from .schemas import (
    AskRequest,
    AskResponse,
    BatchResponse,
    ChunkOut,
    ErrorOut,
    HealthOut,
    SearchQuery,
    SearchRequest,
    SearchResponse,
    search_options,
)

__all__ = ["router"]

_PAGE = Path(__file__).with_name("static") / "index.html"
# Every error body is {"detail": "one line"}, 422 included (not FastAPI's list of errors).
ERRORS: dict[int | str, dict] = {
    400: {"model": ErrorOut},
    401: {"model": ErrorOut},
    413: {"model": ErrorOut},
    422: {"model": ErrorOut, "description": "Invalid parameters or body"},
}


def _as_json(value: dict) -> Response:
    """``value`` (made in the one shape of ``searchcore.results``) as JSON: the route's
    response_model documents it, and FastAPI does not validate and encode it a second time."""
    return Response(json.dumps(value, ensure_ascii=False, separators=(",", ":")), media_type="application/json")


def _options(request: BaseModel) -> SearchOptions:
    try:
        return search_options(request)
    except UsageError as exc:
        raise HTTPException(422, str(exc)) from None


async def _run(request: Request, queries: list[str], options: SearchOptions) -> tuple[list[dict], int, float]:
    holder = request.state.holder
    searcher = holder.searcher  # one reference for the whole request
    started = time.perf_counter()
    # One hit past the page says whether a next page has any.
    results = await holder.search(searcher, queries, replace(options, k=options.k + 1))
    took = (time.perf_counter() - started) * 1000
    out = [
        result_object(q, found, options, places=searcher.places, generation=searcher.generation, took_ms=took)
        for q, found in zip(queries, results)
    ]
    return out, searcher.generation, took


router = APIRouter()


@router.get(
    "/search",
    response_model=SearchResponse,
    responses={**ERRORS, 404: {"model": ErrorOut, "description": "A where filter on a field no document has"}},
    summary="Search with one query",
)
async def search_get(request: Request, params: Annotated[SearchQuery, Query()]) -> Response:
    return _as_json((await _run(request, [params.q], _options(params)))[0][0])


@router.post(
    "/search",
    response_model=SearchResponse | BatchResponse,
    responses={**ERRORS, 404: {"model": ErrorOut, "description": "A where filter on a field no document has"}},
    summary="Search with one query (q) or a batch (queries)",
)
async def search_post(request: Request, body: SearchRequest) -> Response:
    options = _options(body)
    if body.q is not None:
        return _as_json((await _run(request, [body.q], options))[0][0])
    results, generation, took = await _run(request, body.queries, options)
    batch = {"k": options.k, "per_doc": options.per_doc, "generation": generation, "took_ms": round(took, 3)}
    return _as_json({**batch, "results": results})


@router.post(
    "/ask",
    response_model=AskResponse,
    responses={**ERRORS, 404: {"model": ErrorOut, "description": "A where filter on a field no document has"}},
    summary="The cited sentences that answer a question",
)
async def ask_post(request: Request, body: AskRequest) -> Response:
    """The sentences of the best passages that answer the question ``q``, each with its
    citation ``[n] path:lines`` (as `searchctl ask` gives them; no generator runs here)."""
    holder = request.state.holder
    answer = await holder.run(functools.partial(ask, holder.searcher, body.q, k=body.k, options=body.options()))
    return _as_json(answer.to_dict())


@router.get("/chunks/{chunk_id}", response_model=ChunkOut, responses={**ERRORS, 404: {"model": ErrorOut}})
def chunk(request: Request, chunk_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)]) -> ChunkOut:
    """The full text and metadata of one chunk (a hit)."""
    searcher = request.state.holder.searcher
    record = searcher.records.chunk_records([chunk_id]).get(chunk_id)
    if record is None:
        raise HTTPException(404, f"no chunk {chunk_id} in index generation {searcher.generation}")
    return ChunkOut(
        chunk_id=record.chunk_id,
        doc_id=record.doc_id,
        path=record.path,
        key=record.key,
        source=f"{record.path}#{record.key}" if record.key else record.path,
        title=record.title,
        lines=[record.line_start, record.line_end],
        chars=[record.char_start, record.char_end],
        text=record.text,
        metadata=record.metadata,
        generation=searcher.generation,
    )


def _indexed_file(request: Request, path: str) -> tuple[str, str, os.stat_result]:
    """The full path, kind and stat of the indexed file at ``path`` (relative to the
    indexed folder); 404 with the reason for anything else."""
    searcher = request.state.holder.searcher
    try:
        full = searcher.places.absolute(path)
    except UsageError as exc:  # no indexed file has such a path
        raise HTTPException(404, str(exc)) from None
    kind = searcher.records.file_kind(full)
    if kind is None:
        raise HTTPException(404, f"{path[:200]!r} is not a file of this index; only indexed files are served")
    try:
        info = os.stat(full)
    except OSError:
        info = None
    if info is None or not stat.S_ISREG(info.st_mode):
        raise HTTPException(404, f"{path[:200]!r} is indexed but no longer on disk; re-run `searchctl index`")
    return full, kind, info


# How a browser is given each kind of file: what people write as text shows as text.
_AS_TEXT = frozenset({"text", "markdown", "rst", "po", "json", "jsonl", "notebook"})
_MEDIA = {"html": "text/html; charset=utf-8", "svg": "image/svg+xml", "pdf": "application/pdf"}


@router.get(
    "/files/{path:path}",
    response_class=FileResponse,
    responses={**ERRORS, 404: {"model": ErrorOut}, 200: {"content": {"application/octet-stream": {}}}},
    summary="Open an indexed file",
)
def open_file(request: Request, path: Annotated[str, PathParam(max_length=1024)]) -> FileResponse:
    """The file at PATH, relative to the indexed folder (a hit's ``url``). Only files the
    index holds are served: a path with ``..`` or a leading ``/`` names none, nor does any
    file the index does not hold (404 for both, with the reason). Text kinds are sent as
    text/plain; nothing but a PDF may run script (Content-Security-Policy: sandbox)."""
    full, kind, info = _indexed_file(request, path)
    media = "text/plain; charset=utf-8" if kind in _AS_TEXT else _MEDIA.get(kind) or mimetypes.guess_type(full)[0]
    headers = {"X-Content-Type-Options": "nosniff"}
    if kind != "pdf":  # a sandboxed PDF would not open in the browser's viewer
        headers["Content-Security-Policy"] = "sandbox"
    return FileResponse(
        full,
        media_type=media or "application/octet-stream",
        headers=headers,
        filename=os.path.basename(full),
        content_disposition_type="inline",
        stat_result=info,
    )


THUMBNAIL_PIXELS = 320


@router.get(
    "/thumbnails/{path:path}",
    response_class=Response,
    responses={**ERRORS, 404: {"model": ErrorOut}, 200: {"content": {"image/jpeg": {}}}},
    summary="A small picture of an indexed image",
)
def thumbnail(request: Request, path: Annotated[str, PathParam(max_length=1024)]) -> Response:
    """A JPEG of at most 320 x 320 pixels of the indexed image at PATH (relative to the
    indexed folder, as for /files); the same rules: only images the index holds."""
    full, kind, info = _indexed_file(request, path)
    if kind != "image":
        raise HTTPException(404, f"{path[:200]!r} is not an image of this index")
    try:
        with open(full, "rb") as handle:
            _, image = open_image(handle.read())
    except (OSError, NotAnImage) as exc:  # changed since it was indexed into something unreadable
        raise HTTPException(404, f"{path[:200]!r} can no longer be read as an image ({exc})") from None
    image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    headers = {"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"}
    return Response(buffer.getvalue(), media_type="image/jpeg", headers=headers)


@router.get("/health", response_model=HealthOut)
def health(request: Request) -> HealthOut:
    """Liveness and what is being served: model, documents, chunks, generation. Never needs the API key."""
    searcher = request.state.holder.searcher
    return HealthOut(
        status="ok",
        model=searcher.embedder.name,
        documents=searcher.counts["documents"],
        chunks=searcher.counts["chunks"],
        generation=searcher.generation,
        index=searcher.records.source,  # the index folder, or milvus:<URI>/<collection>
    )


@router.get("/info", response_model=dict[str, Any], responses=ERRORS, summary="What the served index is")
def info(request: Request) -> dict[str, Any]:
    """The same figures as `searchctl info --json`: model, backend, dimension, documents,
    chunks, generation, vector search, engine, classifier facets and sizes on disk."""
    return index_info(request.app.state.config).to_dict()


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus(request: Request) -> PlainTextResponse:
    """Prometheus text format: requests and latency by route and status, index size."""
    metrics: Metrics = request.app.state.metrics
    config: Config = request.app.state.config
    body, content_type = metrics.render(request.state.holder.searcher, Path(config.index_dir))
    return PlainTextResponse(body, media_type=content_type)


@functools.cache
def _page() -> str:
    return _PAGE.read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse, include_in_schema=True)
def search_page() -> HTMLResponse:
    """The search page: a query box, ranked results, a click opens the chunk."""
    return HTMLResponse(_page())
