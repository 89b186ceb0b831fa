"""What the commands of ``yolo-io`` share: exit codes, errors, the checks
of paths and outputs, tables and progress."""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn, TextIO

from .._base.errors import YoloIOError
from .._base.progress import Progress, progress_bar
from .._model.config import Config
from .._model.network import Network, load

#: The exit codes (the package's docstring and docs/cli.md say what each means).
EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_IO, EXIT_DEPENDENCY = 0, 1, 2, 3, 4
EXIT_INTERNAL, EXIT_INTERRUPTED = 70, 130
PROG = "yolo-io"


class Failure(Exception):
    """A one-line error with its exit code."""

    def __init__(self, message: str, code: int = EXIT_PROBLEM) -> None:
        super().__init__(message)
        self.code = code


class UsageError(Exception):
    """argparse's complaint about the command line, raised for :func:`main` to
    report (on stdout too with ``--json``) instead of exiting on the spot."""

    def __init__(self, message: str, parser: argparse.ArgumentParser) -> None:
        super().__init__(message)
        self.parser = parser


class ArgumentParser(argparse.ArgumentParser):
    """The parser of ``yolo-io`` and (by inheritance) of its commands."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self)

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse's formatter imports shutil for the terminal's width, and
        # shutil imports zlib, bz2 and lzma: ~2 ms of every command. The same
        # width, as shutil.get_terminal_size() gives it.
        # (typeshed's protocol omits `width`; argparse's formatters all take it)
        formatter: argparse.HelpFormatter = self.formatter_class(
            prog=self.prog, width=_columns() - 2)  # type: ignore[call-arg]
        return formatter


def _columns() -> int:
    """``shutil.get_terminal_size().columns``: $COLUMNS, else the width of
    the terminal on standard output, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


_CLI_WORDS = (
    ("load it with partial=True (yolo_io.load(..., partial=True))", "load it with --partial"),
    ("yolo_io.load(..., partial=True)", "--partial"),
    ("partial=True", "--partial"),
    ("score_threshold", "--score-threshold"),
    ("iou_threshold", "--iou-threshold"),
    ("max_detections", "--max-detections"),
    ("seen must be", "--seen must be"),
    ("layout must be", "--layout must be"),
    ("use backend='onnxruntime' or 'torch'", "use --backend onnxruntime or torch"),
)


def cli_words(text: str) -> str:
    """``text`` with the library's keyword spellings replaced by this
    command's flags ("pass partial=True" becomes "pass --partial")."""
    for python, flag in _CLI_WORDS:
        text = text.replace(python, flag)
    return text


def cli_words_in(doc: Any) -> Any:
    """:func:`cli_words` applied to every string of a JSON document."""
    if isinstance(doc, str):
        return cli_words(doc)
    if isinstance(doc, list):
        return [cli_words_in(v) for v in doc]
    if isinstance(doc, dict):
        return {k: cli_words_in(v) for k, v in doc.items()}
    return doc


def shape_text(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int],
           out: TextIO) -> None:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    out.write("\n".join([fmt(headers), *(fmt(r) for r in rows)]) + "\n")


def check_paths(command: str, cfg: str, weights: str | None, *, swap: bool = True) -> None:
    """Refuses swapped arguments, with the command line the right way round.
    (A file name in any encoding is fine: argv's bytes that are not UTF-8
    arrive as surrogate escapes, which every yolo_io function takes.)"""
    if not swap or weights is None:
        return
    from .._model.network import file_kinds

    if file_kinds(weights, cfg) == ("cfg", "weights"):
        raise Failure(f"the arguments look swapped: {cfg} is a Darknet .weights file and "
                       f"{weights} a .cfg; the cfg comes first: {PROG} {command} "
                       f"{shlex.quote(weights)} {shlex.quote(cfg)}")


def load_or_fail(weights: str, cfg: Config | str, partial: bool) -> Network:
    try:
        return load(weights, cfg, partial=partial)
    except YoloIOError as err:
        first = str(err).split("\n", 1)[0]
        cfg_path = cfg.path if isinstance(cfg, Config) else cfg
        raise Failure(f"{first} (for a diagnosis: {PROG} check {shlex.quote(cfg_path)} "
                       f"{shlex.quote(weights)})") from err


def require(module: str, extra: str) -> None:
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as err:
        raise Failure(f"{module} cannot be imported ({err}): pip install 'yolo_io[{extra}]'",
                       EXIT_DEPENDENCY) from err


@contextlib.contextmanager
def saving_bar(total: int, desc: str) -> Iterator[Progress]:
    """The ``progress`` of a save: a callback drawing a bar named ``desc`` on
    a terminal (False elsewhere); the bar is closed on leaving."""
    bar = progress_bar(total, None, desc)
    if bar is None:
        yield False
        return
    done = [0]

    def update(written: int, size: int, _what: str) -> None:
        if size and size != bar.total:  # the writer knows the output's size
            bar.total = size
        bar.update(written - done[0])
        done[0] = written

    try:
        yield update
    finally:
        bar.close()


def check_outputs(args: argparse.Namespace, *outputs: str | os.PathLike[str] | None) -> None:
    """Refuses an output that is one of the inputs (it would be replaced): the
    same file by inode (through symbolic and hard links), as every writer of
    the library checks it (refuse_inputs)."""
    from .._base.errors import OutputIsInputError
    from .._writing.atomic import refuse_inputs

    for out in outputs:
        if out is None:
            continue
        try:
            refuse_inputs(out, [("the input CFG", args.cfg), ("the input WEIGHTS", args.weights)])
        except OutputIsInputError as err:
            raise Failure(str(err), EXIT_USAGE) from err


def stage(text: str) -> None:
    """A progress line on stderr, only on a terminal."""
    try:
        tty = sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty:
        sys.stderr.write(f"{PROG}: {text}...\n")
        sys.stderr.flush()
