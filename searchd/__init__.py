"""searchd: the HTTP search daemon over a searchctl index.

It owns the FastAPI application (``app``), its routes (``routes``), the ASGI guard for
the API key, body limit and metrics (``guard``, ``metrics``), the request and response
models derived from the search vocabulary (``schemas``), the shared, hot-reloaded view
of the index (``holder``) and the search page (``static/``). It imports only searchcore.
"""

from .app import create_app

__all__ = ["create_app"]
