"""`searchctl query --server URL`: ask a running searchd over HTTP (stdlib only, no model load)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from searchcore.errors import SearchctlError, UsageError
from searchcore.options import SearchOptions

__all__ = ["remote_search"]


def remote_search(server: str, query: str, options: SearchOptions, api_key: str | None, timeout: float = 30) -> dict:
    parsed = urllib.parse.urlsplit(server)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"--server must be an http:// or https:// URL, not {server!r}")
    filters = options.filters
    fields: list[tuple[str, object]] = [
        ("q", query),
        ("k", options.k),
        ("per_doc", str(options.per_doc).lower()),
        ("mode", options.mode),
        ("fusion", options.fusion),
        ("feedback", str(options.feedback).lower()),
        ("explain", "true"),
    ]
    fields += [("offset", options.offset)] if options.offset else []
    fields += [("path", filters.path)] if filters.path else []
    fields += [("type", kind) for kind in filters.kinds]
    fields += [("after", filters.after)] if filters.after is not None else []
    fields += [("before", filters.before)] if filters.before is not None else []
    fields += [("where", f"{f}={v}") for f, v in filters.where]
    fields += [("label", f"{f}={v}" if f else v) for f, v in filters.labels]
    params = urllib.parse.urlencode(fields)
    request = urllib.request.Request(f"{server.rstrip('/')}/search?{params}", headers={"Accept": "application/json"})
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            detail = json.load(exc).get("detail")
        except (ValueError, AttributeError):
            detail = None
        if exc.code == 401:
            raise SearchctlError(
                f"searchd at {server} wants an API key; pass --api-key or set SEARCHD_API_KEY"
            ) from None
        detail = detail if isinstance(detail, str) else json.dumps(detail) if detail else exc.reason
        raise SearchctlError(f"searchd at {server} answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SearchctlError(f"cannot reach searchd at {server} ({reason}); start it with `searchctl serve`") from None
