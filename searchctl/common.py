"""Options and helpers shared by the searchctl commands."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from searchcore.config import DEFAULT_INDEX_DIR

__all__ = [
    "index_option",
    "engine_options",
    "engine_settings",
    "milvus_token_option",
    "model_option",
    "backend_option",
    "device_option",
    "progress_option",
    "wait_option",
    "show_progress",
    "progress_mode",
    "display_path",
    "cache_dir",
    "notice",
    "snippet",
]


def index_option(func):
    return click.option(
        "--index",
        "index_dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=DEFAULT_INDEX_DIR,
        envvar="SEARCHCTL_INDEX",
        show_default=True,
        help="Index folder (or set SEARCHCTL_INDEX).",
    )(func)


def model_option(func):
    return click.option(
        "--model",
        metavar="NAME_OR_PATH",
        default=None,
        help="Sentence-transformers model: a local folder, or a name already in the Hugging Face cache "
        "(hash:DIM: the hashing embedder, for trying the plumbing). Default: the index's own model; "
        "all-MiniLM-L6-v2 for a new index.",
    )(func)


def backend_option(func):
    return click.option(
        "--backend",
        type=click.Choice(["torch", "onnx", "onnx-int8"]),
        default=None,
        help="Model runtime: torch, onnx (fp32) or onnx-int8. Default: the index's own; for a new index "
        "onnx-int8 where onnxruntime runs well, else torch.",
    )(func)


def device_option(func):
    return click.option(
        "--device",
        type=click.Choice(["auto", "cpu", "cuda"]),
        default="auto",
        envvar="SEARCHCTL_DEVICE",
        show_default=True,
        help="Where models run: auto takes a CUDA GPU when torch sees one (or set SEARCHCTL_DEVICE).",
    )(func)


def milvus_token_option(func):
    return click.option(
        "--milvus-token",
        metavar="TOKEN",
        envvar="SEARCHCTL_MILVUS_TOKEN",
        default="",
        help="Milvus token (user:password or an API key); never recorded (or set SEARCHCTL_MILVUS_TOKEN).",
    )(func)


def engine_options(func):
    """--engine, --milvus-uri, --milvus-token, --collection: where the chunks are searched."""
    options = [
        click.option(
            "--engine",
            type=click.Choice(["local", "milvus"]),
            default=None,
            help="Where chunks are searched: local (FAISS + SQLite FTS5) or milvus. Default: the index's own "
            "(local for a new index); the index remembers the choice.",
        ),
        click.option(
            "--milvus-uri",
            metavar="URI",
            envvar="SEARCHCTL_MILVUS_URI",
            default=None,
            help="Milvus to use with --engine milvus: a Milvus Lite file (./chunks.db) or http://host:19530 "
            "(or set SEARCHCTL_MILVUS_URI). Default: the index's own.",
        ),
        milvus_token_option,
        click.option(
            "--collection",
            metavar="NAME",
            default=None,
            help="Milvus collection (an alias searchctl moves on reindex). Default: the index's own, else one "
            "named after the index folder.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def engine_settings(values: dict) -> dict:
    """The Config fields of the engine options, taken out of a command's ``values``."""
    return {
        "engine": values.pop("engine", None),
        "milvus_uri": values.pop("milvus_uri", None),
        "milvus_token": values.pop("milvus_token", "") or "",
        "collection": values.pop("collection", None),
    }


def cache_dir() -> Path:
    """Exported ONNX models: $SEARCHCTL_CACHE, else $XDG_CACHE_HOME/searchctl, else ~/.cache/searchctl."""
    from searchcore.embedder import default_cache_dir

    return default_cache_dir()


def wait_option(func):
    return click.option(
        "--wait", is_flag=True, help="If another process is writing the index, wait for it instead of failing."
    )(func)


def progress_option(func):
    return click.option(
        "--progress/--no-progress",
        default=None,
        help="Progress bars on stderr. Default: bars on a terminal, progress lines in a log.",
    )(func)


def show_progress(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


def progress_mode(progress: bool | None) -> str:
    """bar, lines (stderr is not a terminal and nothing was asked) or none."""
    if progress is None:
        return "bar" if sys.stderr.isatty() else "lines"
    return "bar" if progress else "none"


def display_path(path: str) -> str:
    """``path`` relative to the current folder when it is under it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def notice(message: str | None) -> None:
    if message:
        click.echo(f"note: {message}", err=True)


def snippet(text: str, width: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"
