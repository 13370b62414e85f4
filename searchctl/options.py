"""The search options of the command line, made from ``searchcore.options.PARAMS``.

``search_options("mode", "fusion", ...)`` decorates a command with those options, spelt,
bounded and explained as the vocabulary says; ``to_search_options(values)`` turns what
click parsed into a ``SearchOptions``. The HTTP API derives its request models from the
same table, so a setting means the same thing on both sides.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from searchcore.options import PARAMS, Filters, Param, SearchOptions, param, parse_labels, parse_where

__all__ = ["search_options", "to_search_options", "SEARCH_PARAMS"]

# What `query` offers; `eval` takes the ranking settings only.
SEARCH_PARAMS = tuple(p.name for p in PARAMS)


def _flag(item: Param) -> str:
    return item.flag or "--" + item.name.replace("_", "-")


def _option(item: Param) -> Callable:
    help_text = item.cli_help or item.help
    if item.kind == "int":
        low = int(item.low) if item.low is not None else None
        high = int(item.high) if item.high is not None else None
        kind: Any = click.IntRange(min=low, max=high)
        return click.option(_flag(item), item.name, type=kind, default=item.default, show_default=True, help=help_text)
    if item.kind == "bool" and item.default:
        flag = _flag(item)
        return click.option(f"{flag}/--no-{flag[2:]}", item.name, default=True, show_default=True, help=help_text)
    if item.kind == "bool":
        return click.option(_flag(item), item.name, is_flag=True, help=help_text)
    if item.kind == "choice":
        return click.option(
            _flag(item),
            item.name,
            type=click.Choice(list(item.choices)),
            default=item.default,
            show_default=True,
            help=help_text,
        )
    multiple = item.kind in ("list", "pairs")
    return click.option(_flag(item), item.name, metavar=item.metavar, multiple=multiple, default=None, help=help_text)


def search_options(*names: str) -> Callable:
    """A decorator adding the named search options (all of them by default) to a command."""
    chosen = [param(name) for name in (names or SEARCH_PARAMS)]

    def decorate(func: Callable) -> Callable:
        for item in reversed(chosen):
            func = _option(item)(func)
        return func

    return decorate


def _timestamp(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.UsageError(f"{name} takes a date like 2024-05-31 or 2024-05-31T14:00, not {value!r}") from None
    return moment.timestamp()


def to_search_options(values: dict[str, Any]) -> SearchOptions:
    """The SearchOptions of parsed click values (names as in PARAMS; absent ones default)."""
    path = values.get("path")
    if path and not any(c in path for c in "*?[") and Path(path).exists():
        path = str(Path(path).resolve())  # an existing folder or file: match it exactly
    filters = Filters(
        path=path,
        kinds=tuple(k.lower() for k in values.get("type") or ()),
        after=_timestamp(values.get("after"), "--after"),
        before=_timestamp(values.get("before"), "--before"),
        where=parse_where(values.get("where") or (), strip=True),
        labels=parse_labels(values.get("label") or ()),
    )
    return SearchOptions(
        k=values.get("k", param("k").default),
        offset=values.get("offset") or 0,
        per_doc=values.get("per_doc", False),
        mode=values.get("mode", param("mode").default),
        fusion=values.get("fusion", param("fusion").default),
        feedback=values.get("feedback", True),
        explain=values.get("explain", False),
        filters=filters,
    )
