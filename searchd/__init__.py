"""searchd: the HTTP search daemon over a searchctl index."""

from .app import create_app

__all__ = ["create_app"]
