"""`searchctl query --server URL`: ask a running searchd over HTTP (httpx; no model load here).

The query string is the search vocabulary's own (``searchcore.options.query_params``),
so every option the command line takes reaches the daemon under the name its API reads.
"""

from __future__ import annotations

import httpx

from searchcore.errors import SearchctlError, UsageError
from searchcore.options import SearchOptions, query_params

__all__ = ["remote_search"]


def remote_search(server: str, query: str, options: SearchOptions, api_key: str | None, timeout: float = 30) -> dict:
    try:
        url = httpx.URL(server) if "://" in server else None
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise UsageError(f"--server must be an http:// or https:// URL, not {server!r}")
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    params = query_params(query, options)
    try:
        response = httpx.get(f"{server.rstrip('/')}/search", params=tuple(params), headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise SearchctlError(f"cannot reach searchd at {server} ({exc}); start it with `searchctl serve`") from None
    if response.status_code == 401:
        raise SearchctlError(f"searchd at {server} wants an API key; pass --api-key or set SEARCHD_API_KEY")
    if response.is_error:
        try:
            detail = response.json().get("detail")
        except (ValueError, AttributeError):
            detail = None
        shown = detail if isinstance(detail, str) else response.reason_phrase
        raise SearchctlError(f"searchd at {server} answered {response.status_code}: {shown}")
    return response.json()
