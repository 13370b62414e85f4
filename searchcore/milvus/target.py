"""Where a collection lives, and a connection to it with errors in one line each."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import SearchctlError, UsageError

__all__ = ["MilvusTarget", "connect", "default_collection", "milvus_error", "speaking", "MILVUS_INSTALL"]

MILVUS_INSTALL = "pip install 'searchctl[milvus]'"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
# Seconds a call may take before the engine is called unreachable.
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class MilvusTarget:
    """A Milvus URI (a Milvus Lite file such as ``./chunks.db``, or ``http://host:19530``),
    its token (never recorded anywhere) and the collection name (an alias that ``reindex``
    moves between the collections it writes)."""

    uri: str
    collection: str
    token: str = ""

    def __post_init__(self) -> None:
        if not self.uri.strip():
            raise UsageError("--milvus-uri is empty; give a Milvus Lite file (./chunks.db) or http://host:19530")
        if not _NAME.match(self.collection):
            raise UsageError(
                f"{self.collection!r} is not a Milvus collection name; use letters, digits and '_', "
                "starting with a letter or '_'"
            )

    @property
    def is_lite_file(self) -> bool:
        return "://" not in self.uri

    @property
    def shown(self) -> str:
        """The URI as shown to people: a file made absolute, never a token or a password."""
        if self.is_lite_file:
            return str(Path(self.uri).resolve())
        return re.sub(r"//[^/@]*@", "//", self.uri)

    def recorded(self) -> MilvusTarget:
        """The target as an index records it: a Lite file by its absolute path, so that
        later commands from another folder find it."""
        return MilvusTarget(self.shown if self.is_lite_file else self.uri, self.collection, self.token)

    def client_uri(self) -> str:
        if self.is_lite_file:
            path = Path(self.uri).resolve()
            if not path.parent.is_dir():
                raise UsageError(f"no folder {path.parent} for the Milvus Lite file {path.name}; create it first")
            return str(path)
        return self.uri


def default_collection(index_dir: Path) -> str:
    """A collection name for an index: its folder's name and a hash of its full path."""
    full = str(Path(index_dir).resolve())
    stem = re.sub(r"[^A-Za-z0-9_]", "_", Path(full).name.lstrip(".")) or "index"
    return f"searchctl_{stem[:40]}_{hashlib.sha256(full.encode()).hexdigest()[:8]}"


def _pymilvus():
    # gRPC's own C-core log lines (keep-alive chatter such as "too_many_pings") are not ours
    # to print; it reads this when first imported.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    try:
        import pymilvus
    except ImportError:
        raise SearchctlError(f"the milvus engine needs pymilvus and milvus-lite; {MILVUS_INSTALL}") from None
    # Their loggers print each failure with a traceback; ours is one line (milvus_error).
    for name in ("pymilvus", "milvus_lite", "grpc._server"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return pymilvus


def milvus_error(exc: BaseException, target: MilvusTarget) -> SearchctlError:
    """One line for a failure the engine reported."""
    text = str(getattr(exc, "message", "") or exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = text.lower()
    if target.is_lite_file and "open local milvus failed" in low:
        return SearchctlError(
            f"cannot open the Milvus Lite file {target.shown}: another process has it open (a Lite file serves one "
            "process at a time); share it with `milvus-lite server --data-dir FILE` and --milvus-uri http://..."
        )
    if any(w in low for w in ("auth", "token", "password", "credential", "permission denied", "unauthenticated")):
        return SearchctlError(f"Milvus at {target.shown} refused the token ({text}); check --milvus-token")
    if any(w in low for w in ("unavailable", "connect", "timeout", "deadline", "fail connecting")):
        return SearchctlError(f"cannot reach Milvus at {target.shown} ({text}); check --milvus-uri and that it runs")
    return SearchctlError(f"Milvus at {target.shown}: {text}")


@contextmanager
def speaking(target: MilvusTarget) -> Iterator[None]:
    """Inside: whatever the engine raises comes out as one SearchctlError line."""
    try:
        yield
    except SearchctlError:
        raise
    except Exception as exc:  # pymilvus raises MilvusException, grpc errors, or ConnectionError
        raise milvus_error(exc, target) from None


def connect(target: MilvusTarget):
    """A ``MilvusClient`` for ``target`` (SearchctlError naming the cause when it cannot be had)."""
    pymilvus = _pymilvus()
    if target.is_lite_file:
        try:
            import milvus_lite  # noqa: F401
        except ImportError:
            raise SearchctlError(f"a Milvus Lite file needs milvus-lite; {MILVUS_INSTALL}") from None
    uri = target.client_uri()
    with speaking(target):
        client = pymilvus.MilvusClient(uri=uri, token=target.token, timeout=TIMEOUT_S)
        client.get_server_version()
    return client
