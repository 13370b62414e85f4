"""How a long indexing run shows that it is alive.

On a terminal: a bar over the files (the total is known once the walk is done) with the
chunks embedded and chunks/s beside it. In a log (stderr is not a terminal): a line
about every tenth of the files or every 30 seconds, whichever comes first, with files,
chunks, chunks/s and the time left at the pace so far, starting once the run has taken
``quiet_seconds`` (a run of a second needs no progress in its log). Inside one long file
(OCR of a scanned PDF) the pages move too: on the bar, and in a line at the same pace. Nothing at all when
asked for nothing.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

__all__ = ["Progress", "MODES"]

MODES = ("bar", "lines", "none")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Progress:
    def __init__(
        self,
        mode: str,
        total: int,
        *,
        every_seconds: float = 30.0,
        quiet_seconds: float = 5.0,
        stream: TextIO | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"progress mode {mode!r} is not one of {MODES}")
        self.mode = mode
        self.total = total
        self.files = 0
        self.chunks = 0
        self.every = every_seconds
        self.quiet = quiet_seconds
        self._announced = False
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.embed_seconds = 0.0
        self._last_line = self.started
        self._last_files = 0
        self.bar = tqdm(total=total, desc="files", unit="file", leave=False, disable=mode != "bar", file=self.stream)

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def file_done(self) -> None:
        self.files += 1
        self.bar.update(1)
        self._maybe_line()

    def embedded(self, chunks: int, seconds: float) -> None:
        self.chunks += chunks
        self.embed_seconds += seconds
        if self.mode == "bar":
            self.bar.set_postfix_str(f"{self.chunks:,} chunks, {self.rate:.1f} chunks/s", refresh=True)
        self._maybe_line()

    def reading(self, name: str, done: int, total: int) -> None:
        """Inside one long file (OCR of a scanned PDF): ``done`` of its ``total`` pages read."""
        if self.mode == "bar":
            self.bar.set_postfix_str(f"{name}: OCR page {done}/{total}", refresh=True)
            return
        now = time.perf_counter()
        if self.mode != "lines" or now - self.started < self.quiet or now - self._last_line < self.every:
            return
        self._last_line = now
        self._print(
            f"progress: {self.files:,}/{self.total:,} files; reading {name}: OCR page {done}/{total}, "
            f"{_duration(now - self.started)} elapsed"
        )

    @property
    def rate(self) -> float:
        return self.chunks / self.embed_seconds if self.embed_seconds > 0 else 0.0

    def _maybe_line(self) -> None:
        if self.mode != "lines":
            return
        now = time.perf_counter()
        if now - self.started < self.quiet:
            return
        if not self._announced:
            self._announced = True
            self._print(f"progress: {self.total:,} files to look at")
        elif now - self._last_line < self.every and self.files - self._last_files < max(1, self.total // 10):
            return
        self._line(now)

    def _line(self, now: float) -> None:
        self._last_line, self._last_files = now, self.files
        elapsed = now - self.started
        left = elapsed / self.files * (self.total - self.files) if self.files else 0.0
        self._print(
            f"progress: {self.files:,}/{self.total:,} files, {self.chunks:,} chunks embedded, "
            f"{self.rate:.1f} chunks/s, {_duration(elapsed)} elapsed, ETA {_duration(left)}"
        )

    def close(self) -> None:
        if self._announced and self.files != self._last_files:
            self._line(time.perf_counter())  # the log ends on where the run got to
        self.bar.close()
