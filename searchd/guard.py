"""The ASGI guard in front of every route: the API key, the body size limit, the metrics.

It sits outside FastAPI's routing, so its rules also hold for 404s, /docs and anything
added later. A browser may send the key as the password of HTTP Basic authentication
(what it prompts for on a 401 from the search page).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time

from fastapi.responses import JSONResponse

from .metrics import Metrics
from .schemas import MAX_BODY_BYTES

__all__ = ["Guard", "json_error"]


def json_error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
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


class Guard:
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
                # The page and the files it opens: a browser asks for the key (as a password).
                browsed = scope["path"] == "/" or scope["path"].startswith(("/files/", "/thumbnails/"))
                challenge = 'Basic realm="searchd"' if browsed else "Bearer"
                response = json_error(
                    401, "missing or wrong API key; send 'Authorization: Bearer KEY'", {"WWW-Authenticate": challenge}
                )
                return await response(scope, receive, send)
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return await self.app(scope, receive, send)
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                return await json_error(400, "invalid Content-Length header")(scope, receive, send)
            if int(declared) > MAX_BODY_BYTES:
                return await json_error(413, f"request body over {MAX_BODY_BYTES} bytes")(scope, receive, send)
        # Read the body here, so that a body without Content-Length is held to the limit too.
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY_BYTES:
                return await json_error(413, f"request body over {MAX_BODY_BYTES} bytes")(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        return await self.app(scope, replay, send)
