"""The rule every fine-tuning command keeps: a model that is not better than its base is
not accepted, unless the caller forces it (the model stays in its folder either way).

Each result says whether it improved and, when it did not, why in one line
(``not_better()``); ``require_better`` turns that into ``NotBetterError`` (exit code 1) or,
forced, into the notice to print.
"""

from __future__ import annotations

from typing import Protocol

from searchcore.errors import SearchctlError

__all__ = ["NotBetterError", "Judged", "require_better"]


class NotBetterError(SearchctlError):
    """The fine-tuned model does not beat its base; its folder is still written."""


class Judged(Protocol):
    @property
    def improved(self) -> bool: ...

    def not_better(self) -> str:
        """Why the model is not better, with the figures, in one line."""
        ...


def require_better(result: Judged, *, force: bool = False, forced_by: str | None = "--force") -> str | None:
    """None when ``result`` improved; else the notice to print when ``force``, else
    ``NotBetterError`` (saying how to force it where ``forced_by`` names how)."""
    if result.improved:
        return None
    message = result.not_better()
    if force:
        return message
    raise NotBetterError(f"{message}; {forced_by} accepts it" if forced_by else message)
