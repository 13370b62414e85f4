"""The exceptions searchctl raises.

Every message is one line that names the problem and, where there is one, the fix.
The CLI prints it after ``error:`` and exits with ``exit_code``; nothing else is shown.

    SearchctlError              base class; exit code 1
    ├── UsageError              bad input from the caller; exit code 2
    │   └── NoSuchFieldError    a filter on a metadata field no document has (HTTP 404)
    ├── IndexNotFoundError      no index in the given folder
    ├── ModelMismatchError      a model other than the one the index was built with
    ├── BackendMismatchError    a backend other than the one the index was embedded with
    ├── ModelNotFoundError      a model name or path that cannot be loaded offline
    ├── IndexLockedError        another process is writing the index
    ├── IndexReadOnlyError      the index cannot be written here (it can still be queried)
    ├── IndexFormatError        an index.db this version cannot read
    ├── OnnxUnsupported         (searchcore.onnx_runtime) a model the ONNX backend cannot run
    ├── NotAnImage              (searchcore.images) a file Pillow cannot open as an image
    └── NotBetterError          (finetune.verdict) a fine-tuned model no better than its base
"""

from __future__ import annotations

__all__ = [
    "SearchctlError",
    "UsageError",
    "NoSuchFieldError",
    "IndexNotFoundError",
    "ModelMismatchError",
    "ModelNotFoundError",
    "IndexFormatError",
    "IndexLockedError",
    "BackendMismatchError",
    "IndexReadOnlyError",
]


class SearchctlError(Exception):
    """Base class; ``str(error)`` is the whole message."""

    exit_code = 1


class UsageError(SearchctlError):
    """The caller asked for something impossible (bad path, bad option value)."""

    exit_code = 2


class NoSuchFieldError(UsageError):
    """A ``where`` filter on a metadata field that no document of the index has."""


class IndexNotFoundError(SearchctlError):
    def __init__(self, index_dir: object):
        super().__init__(f"no index at {index_dir}; run `searchctl index DIR` first")


class ModelMismatchError(SearchctlError):
    def __init__(self, index_model: str, requested: str):
        self.index_model = index_model
        self.requested = requested
        super().__init__(
            f"the index was built with model {index_model!r}, not {requested!r}; "
            f"query without --model, or build a new index (--index DIR) with {requested!r}"
        )


class ModelNotFoundError(SearchctlError):
    def __init__(self, model: str, reason: str = ""):
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"model {model!r} not found: it is neither a local sentence-transformers folder nor "
            f"in the local Hugging Face cache, and nothing is downloaded at run time{detail}"
        )


class IndexFormatError(SearchctlError):
    """index.db is from a newer searchctl, or is not a searchctl index at all."""


class IndexLockedError(SearchctlError):
    def __init__(self, index_dir: object, pid: int | None):
        holder = f"process {pid}" if pid else "another process"
        super().__init__(
            f"the index at {index_dir} is being written by {holder}; wait for it to finish, or pass --wait"
        )


class BackendMismatchError(SearchctlError):
    def __init__(self, index_backend: str, requested: str):
        super().__init__(
            f"the index was embedded with the {index_backend!r} backend, not {requested!r}; index without "
            f"--backend, or build a new index (--index DIR) with {requested!r}"
        )


class IndexReadOnlyError(SearchctlError):
    def __init__(self, index_dir: object, reason: str | None = None):
        super().__init__(
            f"cannot write the index at {index_dir} ({reason or 'read-only'}); it can still be queried. "
            "Index into a folder you can write with --index, or fix its permissions"
        )
