"""Prometheus metrics of one searchd app, in a registry of its own (no process globals)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

# Latency buckets for a service that answers in milliseconds.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "searchd_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "searchd_request_duration_seconds",
            "Time from request to response, by route and status.",
            ["route", "method", "status"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.documents = Gauge("searchd_index_documents", "Documents in the served index.", registry=self.registry)
        self.chunks = Gauge("searchd_index_chunks", "Chunks in the served index.", registry=self.registry)
        self.generation = Gauge("searchd_index_generation", "Generation of the served index.", registry=self.registry)
        self.bytes = Gauge("searchd_index_bytes", "Size of the index folder on disk.", registry=self.registry)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (route, method, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def render(self, searcher, index_dir: Path) -> tuple[bytes, str]:
        self.documents.set(searcher.counts["documents"])
        self.chunks.set(searcher.counts["chunks"])
        self.generation.set(searcher.generation)
        folder = Path(index_dir)  # a daemon serving a Milvus collection may have no index folder
        self.bytes.set(sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) if folder.is_dir() else 0)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
