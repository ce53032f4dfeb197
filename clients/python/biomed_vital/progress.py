"""Progress of a run while waiting for it: a tqdm bar when tqdm is installed (``tqdm.auto`` picks the
notebook widget in Jupyter), otherwise one plain line."""
from __future__ import annotations

import sys
from typing import Any, Optional, TextIO


class Progress:
    """What ``Client.wait`` reports to: the run's state after each poll, then ``close``."""

    def update(self, run: Any) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self, run: Any) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def _describe(run: Any) -> str:
    return f"{run.kind.lower()} {run.status.lower()}"


class PlainProgress(Progress):
    """One line, rewritten in place on a terminal or in a notebook (both honour ``\\r``); in a log
    or a captured stream, one line per change so that nothing is garbled."""

    def __init__(self, file: Optional[TextIO] = None) -> None:
        self.file = file or sys.stderr
        self.in_place = _is_interactive(self.file)
        self.last = ""

    def _line(self, run: Any) -> str:
        line = f"{_describe(run)}: {run.done + run.failed}/{run.total} ({run.failed} failed)"
        if run.eta_seconds is not None:
            line += f", about {run.eta_seconds:.0f} s left"
        return line

    def update(self, run: Any) -> None:
        line = self._line(run)
        if line == self.last:
            return
        if self.in_place:
            self.file.write("\r" + line.ljust(len(self.last)))
        else:
            self.file.write(line + "\n")
        self.file.flush()
        self.last = line

    def close(self, run: Any) -> None:
        self.update(run)
        if self.in_place:
            self.file.write("\n")
            self.file.flush()


class TqdmProgress(Progress):
    """A tqdm bar over the run's items; the description says its kind and status."""

    def __init__(self, tqdm: Any, file: Optional[TextIO] = None) -> None:
        self.bar = tqdm(total=None, unit="item", file=file, dynamic_ncols=True)
        self.position = 0

    def update(self, run: Any) -> None:
        processed = run.done + run.failed
        if self.bar.total != run.total:
            self.bar.total = run.total
        self.bar.set_description(_describe(run), refresh=False)
        self.bar.set_postfix(failed=run.failed, refresh=False)
        self.bar.update(processed - self.position)
        self.position = processed

    def close(self, run: Any) -> None:
        self.update(run)
        self.bar.refresh()
        self.bar.close()


def make_progress(file: Optional[TextIO] = None, use_tqdm: Optional[bool] = None) -> Progress:
    """tqdm when installed (unless ``use_tqdm`` is False), else the plain line."""
    if use_tqdm is not False:
        try:
            from tqdm.auto import tqdm  # type: ignore[import-not-found]
        except ImportError:
            if use_tqdm:
                raise
        else:
            return TqdmProgress(tqdm, file)
    return PlainProgress(file)


def _is_interactive(file: TextIO) -> bool:
    if "ipykernel" in sys.modules and file in (sys.stdout, sys.stderr):
        return True
    isatty = getattr(file, "isatty", None)
    return bool(isatty and isatty())
