"""The ``searchctl`` command line: each command parses, makes one library call, renders.

This module is the root group and its error handling; the commands live one module per
group of commands: ``cmd_index`` (index, label, reindex, watch), ``cmd_search`` (query,
eval; ``remote`` asks a running daemon), ``cmd_serve`` (serve), ``cmd_agents`` (ask,
mcp), ``cmd_admin`` (check, compact, info, files), ``cmd_finetune`` (finetune
classifier|embedder, pairs), ``cmd_generate`` (generate, finetune generator),
``cmd_adapt`` (adapt), ``cmd_classify`` (classify) and ``cmd_caption`` (caption).

Errors are one line on stderr (``error: ...``): exit 2 for a usage mistake, 1 for a
runtime failure, never a traceback for bad input.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import sys

import click

from searchcore.errors import SearchctlError

from .cmd_adapt import adapt_cmd
from .cmd_admin import check_cmd, compact_cmd, files_cmd, info_cmd
from .cmd_agents import ask_cmd, mcp_cmd
from .cmd_caption import caption_cmd
from .cmd_classify import classify_cmd
from .cmd_finetune import finetune_group, pairs_group
from .cmd_generate import generate_cmd
from .cmd_index import index_cmd, label_cmd, reindex_cmd, watch_cmd
from .cmd_search import eval_cmd, query_cmd
from .cmd_serve import serve_cmd

# Set before anything imports huggingface_hub: no hub call may ever leave the machine.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class _Group(click.Group):
    """Turns every failure into one line and the right exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = 0
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            code = 2
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
            code = exc.exit_code
        except SearchctlError as exc:
            click.echo(f"error: {exc}", err=True)
            code = exc.exit_code
        except OSError as exc:  # disk full, permissions, a folder where a file should be...
            where = f": {exc.filename}" if exc.filename else ""
            hint = ""
            if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                hint = "; the last committed index is intact: free some space and run the command again"
            click.echo(f"error: {exc.strerror or exc}{where}{hint}", err=True)
            code = 1
        except sqlite3.Error as exc:
            message = str(exc)
            if "full" in message or "disk I/O" in message:
                hint = "; the last committed index is intact: free some space and run the command again"
            elif "readonly" in message or "read-only" in message:
                hint = "; the index folder is read-only for this user: use --index on a folder you can write"
            else:
                hint = "; `searchctl check` says whether the index is sound"
            click.echo(f"error: index.db: {message}{hint}", err=True)
            code = 1
        except (click.Abort, KeyboardInterrupt):
            click.echo("aborted", err=True)
            code = 130
        if standalone_mode:
            sys.exit(code)
        return code


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="searchctl")
def cli() -> None:
    """Semantic search over your own folders of documents.

    Index a folder once (re-runs embed only what changed), then query it by meaning.
    Everything runs offline; the index lives in ./.searchctl unless --index says otherwise.
    """


for command in (
    index_cmd,
    query_cmd,
    ask_cmd,
    eval_cmd,
    serve_cmd,
    mcp_cmd,
    check_cmd,
    compact_cmd,
    info_cmd,
    files_cmd,
    finetune_group,
    classify_cmd,
    caption_cmd,
    label_cmd,
    pairs_group,
    reindex_cmd,
    watch_cmd,
    generate_cmd,
    adapt_cmd,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="searchctl")
