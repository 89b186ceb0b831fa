"""Everything ``darknet detector train`` needs from a ``.data`` file, checked
before it starts (:func:`check_data`), and a chart of the boxes per class
(:func:`plot`).

Every rule follows AlexeyAB's darknet, cited as ``file.c:function``: the
``.data`` file as ``option_list.c:read_data_cfg`` reads it, the image lists as
``data.c:get_paths`` reads them (``utils.c:fgetl``), each image's label path
as ``utils.c:replace_image_to_label`` derives it (:func:`label_path`), the
label files as ``data.c:read_boxes`` reads them and ``data.c:fill_truth_detection``
keeps or drops their boxes, the backup folder as ``detector.c:train_detector``
writes to it, and the cfg's training options as ``parser.c:parse_net_options``
reads them. No image is decoded unless ``images=True``; then only its header
(Pillow).
"""

from __future__ import annotations

import difflib
import errno
import itertools
import math
import os
import re
import stat
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .._base.errors import CfgError, CfgWarning, FormatError
from .._base.paths import PathArg, fs_path, shown
from .._base.progress import Progress, Reporter
from .._model.attrs import GaussianYoloAttrs
from .._model.config import Config, atoi, cfg_text, core_config, parse
from .diagnose import (
    Finding,
    _class_file_findings,
    _count_names,
    _head_findings,
    _head_inputs,
)
from .text_files import fgetl_lines, read_data_file, read_text_file

__all__ = ["MAX_FINDINGS_PER_KIND", "DataCheck", "DataFinding", "check_data", "label_path",
           "plot", "read_boxes"]

MAX_FINDINGS_PER_KIND = 1000
"""Findings kept per kind (``DataCheck.counts`` has every count): a dataset
whose 100,000 label files are all missing gives 1000 findings, not 100,000."""

_RANK = {"error": 0, "warning": 1, "info": 2}
_SHOW_PER_KIND = 5  # findings of one kind that str() prints
_BACKUP_BUFF = 256  # detector.c:train_detector's char buff[256] for "%s/%s_final.weights"
_MAX_LABEL_BYTES = 64 << 20
# What darknet's .data readers look up (option_find* in detector.c, classifier.c, ...).
_KNOWN_KEYS = frozenset({"classes", "train", "valid", "names", "backup", "eval", "results",
                         "difficult", "map", "saveweights", "savelast", "labels", "top",
                         "leaves", "tree", "label", "test"})
# utils.c:replace_image_to_label, in its order: find_replace (first occurrence) ...
_DIR_REPLACEMENTS = (
    ("/images/train2017/", "/labels/train2017/"),
    ("/images/val2017/", "/labels/val2017/"),
    ("/JPEGImages/", "/labels/"),
    ("\\images\\train2017\\", "\\labels\\train2017\\"),
    ("\\images\\val2017\\", "\\labels\\val2017\\"),
    ("\\images\\train2014\\", "\\labels\\train2014\\"),
    ("\\images\\val2014\\", "\\labels\\val2014\\"),
    ("/images/train2014/", "/labels/train2014/"),
    ("/images/val2014/", "/labels/val2014/"),
    ("\\JPEGImages\\", "\\labels\\"),
)
# ... then find_replace_extension (only at the end, case-sensitive) of these.
_EXTENSIONS = (".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".bmp", ".BMP", ".ppm", ".PPM",
               ".tiff", ".TIFF")


# -- darknet's readers --------------------------------------------------------

def label_path(image: str) -> str:
    """The label file darknet reads for ``image``, exactly as
    ``utils.c:replace_image_to_label`` derives it: ten ``find_replace`` calls
    in its order, each replacing only the FIRST occurrence (``/images/train2017/``
    and ``/images/val2017/`` to ``/labels/...``, ``/JPEGImages/`` to
    ``/labels/``, their backslash forms, the 2014 folders; no plain
    ``/images/``), then ``trim`` (spaces and tabs at both ends, not ``\\r``),
    then ``find_replace_extension`` for ``.jpg .JPG .jpeg .JPEG .png .PNG .bmp
    .BMP .ppm .PPM .tiff .TIFF``, each replaced only at the very end (so
    ``.Jpg``, ``.tif``, ``.webp`` keep theirs: darknet prints "Failed to infer
    label file name" and opens that path). Works on the name as given (no
    file system)."""
    out = image
    for orig, rep in _DIR_REPLACEMENTS:
        out = out.replace(orig, rep, 1)
    out = out.strip(" \t")
    for ext in _EXTENSIONS:
        if out.endswith(ext):  # strlaststr() at the end: the last occurrence is the suffix
            return out[:-len(ext)] + ".txt"
    return out


# data.c:read_boxes: fscanf(file, "%d %f %f %f %f", ...) == 5, repeated. %d and %f
# skip white space, then take the longest valid prefix; a %f whose prefix is not
# a number ("1e", "-", "x") fails, and reading stops.
_WS = rb"[ \t\n\v\f\r]*"
_SCAN_INT = re.compile(_WS + rb"([+-]?[0-9]+)")
_SCAN_FLOAT = re.compile(
    _WS + rb"([+-]?(?:0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    rb"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    rb"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN](?:\([0-9A-Za-z_]*\))?))")
_DANGLING_EXPONENT = re.compile(rb"[eEpP][+-]?(?![0-9])")
# A file of well-formed lines: five numbers each (a plain int, four plain floats).
_NUM = rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_GOOD_FILE = re.compile(rb"(?:[ \t\r\f\v]*(?:[+-]?[0-9]+(?:[ \t\r\f\v]+" + _NUM
                        + rb"){4}[ \t\r\f\v]*)?(?:\n|\Z))*")
_GOOD_INT = re.compile(rb"[+-]?[0-9]+")
_GOOD_NUM = re.compile(_NUM)


@dataclass(frozen=True)
class _Box:
    id: int
    x: float
    y: float
    w: float
    h: float
    line: int  # where its class id is


def read_boxes(data: bytes) -> tuple[list[_Box], int | None]:
    """The boxes ``data.c:read_boxes`` reads from a label file of ``data``
    (fscanf ``"%d %f %f %f %f"`` until it does not match five: lines do not
    matter, white space does not either), and the line where it stopped
    early (None: it read to the end)."""
    boxes: list[_Box] = []
    pos = 0
    while True:
        m = _SCAN_INT.match(data, pos)
        if m is None:
            break
        line = data.count(b"\n", 0, m.start(1)) + 1
        values: list[float] = []
        end = m.end()
        for _ in range(4):
            f = _SCAN_FLOAT.match(data, end)
            if f is None or _DANGLING_EXPONENT.match(data, f.end()):
                break
            values.append(_c_float(f.group(1)))
            end = f.end()
        if len(values) < 4:  # fscanf returns less than 5: the loop ends, the record dropped
            break
        x, y, w, h = values
        boxes.append(_Box(_c_int(m.group(1)), x, y, w, h, line))
        pos = end
    rest = data[pos:]
    if rest.strip(b" \t\n\v\f\r"):
        skipped = len(rest) - len(rest.lstrip(b" \t\n\v\f\r"))
        return boxes, data.count(b"\n", 0, pos + skipped) + 1
    return boxes, None


def _c_int(text: bytes) -> int:
    return int(text)


def _c_float(text: bytes) -> float:
    t = text.lower()
    if b"x" in t:
        sign = -1.0 if t.startswith(b"-") else 1.0
        body = t.lstrip(b"+-")
        if b"p" not in body:
            body += b"p0"
        if body.endswith(b"."):
            body = body[:-1]
        try:
            return sign * float.fromhex(body.decode())
        except ValueError:
            return math.nan
    if b"nan" in t:
        return math.nan
    return float(t)


# -- the report -----------------------------------------------------------------

@dataclass(frozen=True)
class DataFinding(Finding):
    """One thing :func:`check_data` found, at ``path``:``line`` (``line``
    None: the file as a whole). ``kind`` is one of: ``"data-refused-line"``,
    ``"data-unknown-key"``, ``"data-default"``, ``"data-classes"``,
    ``"data-names"``, ``"names-missing"``, ``"names-count"``, ``"list-missing"``,
    ``"list-empty"``, ``"crlf"``, ``"nul-byte"``, ``"blank-line"``,
    ``"image-missing"``, ``"image-unreadable"``, ``"duplicate-image"``,
    ``"train-valid-overlap"``, ``"valid-is-train"``, ``"label-extension"``,
    ``"label-missing"``, ``"label-unreadable"``,
    ``"label-format"``, ``"class-id"``, ``"box-coords"``, ``"box-size"``,
    ``"box-tiny"``, ``"too-many-boxes"``, ``"backup-missing"``,
    ``"backup-unwritable"``, ``"backup-path-too-long"``, and for the cfg:
    ``"cfg-error"``, ``"head-filters"``, ``"heads-disagree"``, ``"batch"``,
    ``"max-batches"``, ``"steps"``, ``"policy"``, ``"input-size"``."""

    path: str | None = None
    """The file the finding is in."""
    line: int | None = None
    """Its 1-based line, or None for the file as a whole."""

    def __str__(self) -> str:
        where = shown(self.path or "")
        if self.line is not None:
            where += f":{self.line}"
        text = f"{where}: {self.severity} [{self.kind}]: {shown(self.message)}"
        if self.fix:
            text += f"\n  fix: {shown(self.fix)}"
        for edit in self.edits:
            text += f"\n    {edit}"
        return text


@dataclass(frozen=True, eq=False)
class DataCheck:
    """What :func:`check_data` found: ``findings`` (errors first, then
    warnings and notes, each in file order), ``ok`` when none is an error,
    ``errors``, ``counts`` (findings per kind, before the cap of
    :data:`MAX_FINDINGS_PER_KIND`), a summary of the dataset, ``to_dict()``
    and a printable report."""

    data: str
    """The ``.data`` file."""
    cfg: str | None
    """The cfg checked with it, if any."""
    root: str
    """The folder relative paths were resolved from (darknet's current folder)."""
    train: str | None
    """The train list as darknet opens it (``train=``, default ``data/train.txt``)."""
    valid: str | None
    """The valid list (``valid=``, default the train list)."""
    classes: int
    """The class count labels are checked against: the cfg's last head's
    (what ``detector train`` uses), else ``classes=``, else the names'."""
    class_names: tuple[str, ...]
    train_images: int
    """Entries of the train list (every line darknet reads, blank ones too)."""
    valid_images: int
    """Entries of the valid list (0 when it is the train list)."""
    labels: int
    """Label files of the train list darknet can open."""
    boxes: int
    """Boxes of the train list darknet keeps (after dropping those it drops)."""
    boxes_per_class: tuple[int, ...]
    """:attr:`boxes` per class id, ``0 .. classes - 1``."""
    images_without_boxes: int
    """Images of the train list whose label file darknet opens but keeps no
    box from."""
    findings: tuple[DataFinding, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    _inputs: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    _images: tuple[str, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        """No finding is an error."""
        return not any(f.severity == "error" for f in self.findings)

    @property
    def errors(self) -> tuple[DataFinding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def classes_without_boxes(self) -> tuple[int, ...]:
        """The class ids no kept box has."""
        return tuple(i for i, n in enumerate(self.boxes_per_class) if n == 0)

    def class_name(self, i: int) -> str:
        return self.class_names[i] if i < len(self.class_names) else f"class {i}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the files, ``ok``, the summary, ``counts`` and
        ``findings``."""
        return {
            "data": self.data, "cfg": self.cfg, "root": self.root, "train": self.train,
            "valid": self.valid, "ok": self.ok, "classes": self.classes,
            "class_names": list(self.class_names), "train_images": self.train_images,
            "valid_images": self.valid_images, "labels": self.labels, "boxes": self.boxes,
            "boxes_per_class": list(self.boxes_per_class),
            "classes_without_boxes": list(self.classes_without_boxes),
            "images_without_boxes": self.images_without_boxes, "counts": dict(self.counts),
            "findings": [f.to_dict() for f in self.findings]}

    def __str__(self) -> str:
        errors = len(self.errors)
        warns = sum(f.severity == "warning" for f in self.findings)
        if errors:
            head = f"{self.data}: {errors} error(s), {warns} warning(s): darknet would fail or " \
                   f"train on something else than these files say"
        else:
            head = f"{self.data}: ready to train" + (f" ({warns} warning(s))" if warns else "")
        out = [shown(head)]
        shown_per_kind: dict[str, int] = {}
        for f in self.findings:
            k = shown_per_kind.get(f.kind, 0)
            shown_per_kind[f.kind] = k + 1
            if k < _SHOW_PER_KIND:
                out.append(str(f))
            elif k == _SHOW_PER_KIND:
                more = self.counts.get(f.kind, 0) - _SHOW_PER_KIND
                out.append(f"... and {more} more [{f.kind}] (all of them: --json / to_dict())")
        out.append(shown(f"paths relative to {self.root} (the folder darknet runs in)"))
        out.append(shown(f"train: {self.train}: {self.train_images} image(s); valid: "
                         f"{self.valid}: " + (f"{self.valid_images} image(s)" if self.valid_images
                                             or self.valid != self.train else "the train list")))
        out.append(f"train labels: {self.labels} file(s), {self.boxes} box(es) kept, "
                   f"{self.images_without_boxes} image(s) without a box")
        if self.boxes_per_class:
            width = max(len(str(n)) for n in self.boxes_per_class)
            for i, n in enumerate(self.boxes_per_class):
                out.append(shown(f"  {i:>3} {self.class_name(i)}: {n:>{width}}"))
            none = self.classes_without_boxes
            if none:
                out.append(shown("classes without a box: " + ", ".join(
                    f"{i} {self.class_name(i)}" for i in none[:20])
                    + (f" and {len(none) - 20} more" if len(none) > 20 else "")))
        return "\n".join(out)


class _Findings:
    """Findings as they are made, capped per kind, counted."""

    def __init__(self) -> None:
        self.items: list[DataFinding] = []
        self.counts: dict[str, int] = {}

    def add(self, kind: str, severity: str, path: str | None, line: int | None, message: str,
            fix: str | None = None) -> None:
        n = self.counts.get(kind, 0)
        self.counts[kind] = n + 1
        if n < MAX_FINDINGS_PER_KIND:
            self.items.append(DataFinding(kind, severity, message, fix,  # type: ignore[arg-type]
                                          path=path, line=line))

    def adopt(self, finding: Finding, path: str, line: int | None) -> None:
        """A finding of the cfg diagnosis, at ``path``:``line``."""
        self.counts[finding.kind] = self.counts.get(finding.kind, 0) + 1
        values = {f.name: getattr(finding, f.name) for f in fields(Finding)}
        self.items.append(DataFinding(**values, path=path, line=line))

    def sorted(self) -> tuple[DataFinding, ...]:
        return tuple(sorted(self.items, key=lambda f: _RANK[f.severity]))


# -- check_data -------------------------------------------------------------------

def check_data(data_file: PathArg, *, cfg: PathArg | Config | None = None,
               root: PathArg | None = None, images: bool = False,
               progress: Progress = None) -> DataCheck:
    """Check everything ``darknet detector train`` will need, before it starts.

    Reads the ``.data`` file as darknet does and checks: its lines and keys
    (``train``, ``valid``, ``names``, ``backup``, ``classes``, with darknet's
    defaults when absent); the ``backup`` folder exists and is writable
    (darknet trains, then fails at its first save); the ``.names`` count
    against ``classes=`` and the cfg's heads; with ``cfg``, the heads'
    ``filters=`` against their ``classes=``, ``batch`` against
    ``subdivisions``, ``steps``/``scales`` against ``max_batches``, width and
    height against 32; the image lists (Windows line endings, NUL bytes,
    blank lines, missing or unreadable images, duplicates, images in both
    lists); each image's label file at the path darknet derives
    (:func:`label_path`): missing, lines that are not five numbers, class ids
    outside ``[0, classes)``, coordinates outside ``(0, 1]``, zero-size boxes;
    and counts boxes per class. Each finding has its file, line and fix.

    Relative paths are resolved as darknet resolves them: from the folder it
    runs in, ``root`` (default: the current folder); the image paths of the
    lists too (not from the list's folder).

    Args:
        data_file: darknet's ``.data`` file (a path: str, bytes or os.PathLike).
        cfg: the ``.cfg`` to train, optional (a path, cfg text or a Config):
            adds the cfg's checks, and labels are checked against its last
            head's classes (what darknet uses).
        root: the folder darknet will run in (default: the current folder).
        images: also read each image's header (needs Pillow): a file that is
            not an image is then found too. Without it only ``stat`` and
            ``access`` are called per image, no image is read.
        progress: a bar over the images on stderr when it is a terminal (None,
            the default; needs ``tqdm``), always (True), never (False), or a
            callback ``(done, total, what)``.

    Returns:
        A :class:`DataCheck`: ``ok``, ``findings``, ``counts``, the summary
        (images, labels, boxes per class), ``to_dict()``, ``str()``.

    Raises:
        FileNotFoundError, PermissionError, IsADirectoryError: the ``.data``
            file or ``root`` cannot be read.
        FormatError: the ``.data`` file is not one (no ``key=value`` line
            darknet's detector reads, or a cfg's ``[section]``).
        ImportError: ``images=True`` without Pillow.

    Example:
        >>> report = yolo_io.check_data("obj.data", cfg="yolov4-obj.cfg")
        >>> print(report)                   # findings, then the summary
        >>> report.ok, report.boxes_per_class
    """
    data_path = fs_path(data_file, "data_file")
    root_path = os.getcwd() if root is None else fs_path(root, "root")
    if images:
        try:
            import PIL.Image  # noqa: F401
        except ImportError as err:
            raise ImportError("check_data(images=True) reads image headers with Pillow: pip "
                              "install Pillow") from err
    out = _Findings()
    options, refused, keys, raw_lines = read_data_file(data_path)
    _check_data_lines(data_path, options, refused, keys, out)
    root_fd = os.open(root_path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
                      | getattr(os, "O_CLOEXEC", 0))
    try:
        return _check(data_path, cfg, root_path, root_fd, options, raw_lines, images, progress,
                      out)
    finally:
        os.close(root_fd)


def _value(options: Mapping[str, tuple[str | None, int]], key: str, default: str | None
           ) -> tuple[str | None, int | None]:
    """``option_find_str``: the value and its line, or the default (line None)."""
    if key in options:
        value, line = options[key]
        if value is not None:
            return value, line
        return default, line
    return default, None


def _check_data_lines(path: str, options: Mapping[str, tuple[str | None, int]],
                      refused: Sequence[tuple[int, str]], keys: Sequence[tuple[str, int]],
                      out: _Findings) -> None:
    if any(key.startswith("[") for key, _ in keys):
        line = next(n for key, n in keys if key.startswith("["))
        raise FormatError(f"{path}:{line}: a [section] line: this is a .cfg, not a darknet .data "
                          f"file (classes=, train=, valid=, names=, backup=)")
    if not any(options.get(k, (None, 0))[0] for k in ("classes", "train", "valid", "names",
                                                        "backup")):
        raise FormatError(f"{path}: not a darknet .data file: no key=value line with classes=, "
                          f"train=, valid=, names= or backup= (option_list.c:read_data_cfg)")
    for line, text in refused:
        out.add("data-refused-line", "error", path, line,
                f"{_q(text)} has no value: darknet prints \"Config file error line {line}\" and "
                f"skips it (option_list.c:read_option), so the default is used",
                fix=f"give it a value ({text}VALUE) or delete the line")
    for key, (value, line) in options.items():
        if value is None:
            out.add("data-refused-line", "error", path, line,
                    f"{_q(key)} has no '=': darknet keeps it as a key without a value, and "
                    f"option_find() returns that first line: the default is used "
                    f"(option_list.c:read_option)", fix=f"write it as {key}=VALUE")
        if key not in _KNOWN_KEYS:
            close = difflib.get_close_matches(key, sorted(_KNOWN_KEYS), n=1)
            out.add("data-unknown-key", "warning", path, line,
                    f"darknet reads no key {_q(key)}" + (f" (a typo of {close[0]!r}?)" if close
                                                       else ""),
                    fix=f"spell it {close[0]}=" if close else "delete the line")
    seen: dict[str, int] = {}
    for key, line in keys:
        if key in seen:
            out.add("data-unknown-key", "warning", path, line,
                    f"{key}= again: darknet uses the first one, at line {seen[key]} "
                    f"(option_list.c:option_find)", fix="delete one of them")
        else:
            seen[key] = line


def _q(name: str) -> str:
    """``repr(name)`` with the bytes that are not UTF-8 as ``\\xNN`` (not ``\\udcNN``)."""
    return re.sub(r"\\udc([89a-f][0-9a-f])", r"\\x\1", repr(name))


def _resolve(root: str, path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(root, path)


def _path_hint(raw: str | None, value: str) -> str:
    """Why a .data path may not be what its author meant."""
    hints = []
    if raw is not None and raw.partition("=")[2].strip(" \t\r") != value:
        if "#" in value:
            hints.append("darknet keeps a comment after the value as part of it")
        if re.search(r"[ \t]", raw.partition("=")[2].strip(" \t\r")):
            hints.append("darknet deletes every space of the line (option_list.c:read_data_cfg "
                         "strip()), spaces inside the path too")
    return f" ({'; '.join(hints)})" if hints else ""


def _check(data_path: str, cfg: PathArg | Config | None, root: str, root_fd: int,
           options: Mapping[str, tuple[str | None, int]], raw_lines: Mapping[str, str],
           images: bool, progress: Progress, out: _Findings) -> DataCheck:
    config, cfg_path = _check_cfg(cfg, out) if cfg is not None else (None, None)
    heads = [layer for layer in config or () if layer.kind.grid_head]
    # detector.c:train_detector: classes and max boxes of the last [yolo]/[Gaussian_yolo]/[region]
    head = heads[-1] if heads else None

    # names
    inputs: list[tuple[str, str]] = [("the input .data", data_path)]
    if config is not None and cfg_path is not None:
        inputs.append(("the input CFG", cfg_path))
    names_value, names_line = _value(options, "names", "data/names.list")
    names_path = _resolve(root, names_value or "")
    class_names: list[str] = []
    names_count: int | None = None
    try:
        raw = read_text_file(names_path)
        names_count, _ = _count_names(names_path)
        class_names = [os.fsdecode(v) for v, _ in fgetl_lines(raw)]
        inputs.append(("the .names file", names_path))
    except OSError as err:
        out.add("names-missing", "warning", data_path, names_line,
                f"names={names_value}{' (the default)' if names_line is None else ''} cannot be "
                f"read from {root}: {err.strerror}{_path_hint(raw_lines.get('names'), names_value or '')}"
                f": `detector train -map` stops at once (get_labels_custom: file_error), detector "
                f"test/map/demo too",
                fix="give names= the path of the .names file, one class name per line, from "
                    "the folder darknet runs in")
    classes_value, classes_line = _value(options, "classes", None)
    data_classes = atoi(classes_value) if classes_value is not None else None
    head_classes = int(getattr(head.attrs, "classes", 0)) if head is not None else None
    if data_classes is None:
        out.add("data-default", "warning", data_path, classes_line,
                "classes= is not set: `detector train` takes the count from the cfg, but "
                "detector demo assumes 20 and calc_anchors 1 (detector.c)",
                fix=f"add classes={head_classes or names_count or 'N'}")
    if data_classes is not None and head is not None and data_classes != head_classes:
        out.add("data-classes", "error", data_path, classes_line,
                f"classes={data_classes}, but the last head of {cfg_path} (layer {head.index}, "
                f"line {head.line}) has classes={head_classes}: `detector train` uses the "
                f"cfg's (detector.c:train_detector), detector test/demo this one",
                fix=f"make them equal: classes={head_classes} here, or the cfg's heads for "
                    f"{data_classes} classes")
    if names_count is not None and data_classes is not None and names_count != data_classes:
        out.add("data-names", "error", names_path, names_count or None,
                f"{names_count} line(s), but {data_path}:{classes_line} says "
                f"classes={data_classes} (darknet counts every line, blank ones too)",
                fix="one class name per line, as many as classes=")
    if config is not None and names_count is not None:
        for f in _class_file_findings(config, None, names_path, []):
            out.adopt(f, names_path, names_count or None)
    classes = head_classes if head_classes is not None else (
        data_classes if data_classes is not None else (names_count or 0))

    # backup
    backup_value, backup_line = _value(options, "backup", "/backup/")
    _check_backup(data_path, root, backup_value or "", backup_line, config, raw_lines, out)

    # the lists
    train_value, train_line = _value(options, "train", "data/train.txt")
    valid_value, valid_line = _value(options, "valid", train_value)
    train_path = _resolve(root, train_value or "")
    valid_path = _resolve(root, valid_value or "")
    net_w = config.net.width if config is not None else 0
    net_h = config.net.height if config is not None else 0
    max_boxes = _option_int(head.options.get("max"), 200) if head is not None else 200
    scan = _Scan(root, root_fd, classes, net_w, net_h, max_boxes if head is not None else None,
                 images, out)
    train_lines = _read_list(data_path, "train", train_value or "", train_line, train_path,
                             raw_lines, out, required=True)
    same = valid_value == train_value or _same_file(train_path, valid_path)
    valid_lines: list[tuple[bytes, int]] | None = None
    if valid_line is None and "valid" not in options:
        out.add("valid-is-train", "info", data_path, None,
                "valid= is not set: `detector train -map` measures mAP on the training images "
                "(detector.c:train_detector: valid defaults to train)",
                fix="add valid= with images that are not in the train list")
    elif same:
        out.add("valid-is-train", "warning", data_path, valid_line,
                "valid= is the train list: the mAP of `-map` is measured on the training "
                "images, and is too good", fix="validate on images that are not trained on")
    else:
        valid_lines = _read_list(data_path, "valid", valid_value or "", valid_line, valid_path,
                                 raw_lines, out, required=False)
    total = len(train_lines or ()) + len(valid_lines or ())
    with Reporter(progress, total, "check-data", unit="img", what="images") as report:
        train_keys = scan.run(train_path, train_lines or [], report, 0)
        scan.counting = False  # the summary is of the train list: what darknet trains on
        if valid_lines:
            valid_keys = scan.run(valid_path, valid_lines, report, len(train_lines or ()))
            for key, (line, name) in valid_keys.items():
                if key in train_keys:
                    out.add("train-valid-overlap", "warning", valid_path, line,
                            f"{_q(name)} is also in the train list (line {train_keys[key][0]}): "
                            f"the mAP of `-map` is measured on an image trained on",
                            fix="keep each image in one list")
        report.finish()
    if train_lines is not None:
        inputs.append(("the train list", train_path))
    if valid_lines is not None:
        inputs.append(("the valid list", valid_path))
    return DataCheck(
        data=data_path, cfg=cfg_path, root=root, train=train_path,
        valid=valid_path if not same else train_path, classes=classes,
        class_names=tuple(class_names), train_images=len(train_lines or ()),
        valid_images=len(valid_lines or ()), labels=scan.labels,
        boxes=sum(scan.per_class), boxes_per_class=tuple(scan.per_class),
        images_without_boxes=scan.empty, findings=out.sorted(), counts=dict(out.counts),
        _inputs=tuple(inputs), _images=tuple(scan.images))  # names as darknet reads them


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _read_list(data_path: str, key: str, value: str, line: int | None, path: str,
               raw_lines: Mapping[str, str], out: _Findings, *, required: bool
               ) -> list[tuple[bytes, int]] | None:
    """The lines of an image list as ``data.c:get_paths`` reads them, and the
    findings about the file as a whole (missing, empty, line endings)."""
    default = " (the default)" if line is None else ""
    try:
        data = _read_list_bytes(path)
    except OSError as err:
        if required:
            what = ("darknet stops at once: data.c:get_paths, \"Couldn't open file\" "
                    "(file_error)")
        else:
            what = ("`detector train -map` stops at once (detector.c:train_detector), "
                    "`detector map` too")
        out.add("list-missing", "error" if required else "warning", data_path, line,
                f"{key}={value}{default} cannot be read from the folder darknet runs in: "
                f"{err.strerror or err}{_path_hint(raw_lines.get(key), value)}: {what}",
                fix=f"give {key}= the path of the list, one image per line, from the folder "
                    f"darknet runs in (or pass --root)")
        return None
    lines = fgetl_lines(data)
    if not lines:
        out.add("list-empty", "error", path, None,
                "the list has no image: " + ("darknet divides by its size 0 when it draws "
                                             "images (data.c:get_random_paths: "
                                             "random_gen() % m) and crashes" if required else
                                             "`-map` measures nothing"),
                fix="one image path per line")
        return lines
    crlf = data.count(b"\r\n")
    if crlf:
        out.add("crlf", "warning", path, 1,
                f"{crlf} line(s) end in \\r\\n (Windows): AlexeyAB's darknet drops the \\r "
                f"(utils.c:fgetl), but pjreddie's darknet and other tools read names ending "
                f"in \\r", fix="convert the list to \\n line endings (dos2unix)")
    for raw_line, number in lines:
        if b"\r" in raw_line:
            out.add("crlf", "error", path, number,
                    f"{os.fsdecode(raw_line)!r} keeps a \\r: darknet reads it as part of the "
                    f"name (utils.c:fgetl drops a \\r only just before a \\n), so neither the "
                    f"image nor its label can be opened",
                    fix="convert the list to \\n line endings (dos2unix) and end it with \\n")
    if b"\0" in data:
        first = data.count(b"\n", 0, data.index(b"\0")) + 1
        out.add("nul-byte", "error", path, first,
                "a NUL byte: darknet reads the name up to it and joins the next line to it "
                "(utils.c:fgetl)", fix="delete the NUL bytes (a damaged or UTF-16 file?)")
    return lines


def _read_list_bytes(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 24)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class _Scan:
    """The images of the lists and their labels."""

    def __init__(self, root: str, root_fd: int, classes: int, net_w: int, net_h: int,
                 max_boxes: int | None, images: bool, out: _Findings) -> None:
        self.root, self.fd, self.classes = root, root_fd, classes
        self.net_w, self.net_h, self.max_boxes = net_w, net_h, max_boxes
        self.read_images = images
        self.out = out
        self.labels = 0
        self.empty = 0
        self.per_class = [0] * max(classes, 0)
        self.images: list[str] = []
        self.counting = True  # labels, boxes and empty images go to the summary

    def run(self, list_path: str, lines: Sequence[tuple[bytes, int]], report: Reporter,
            done: int) -> dict[object, tuple[int, str]]:
        """Checks every entry; returns {image identity: (line, name)}."""
        seen: dict[object, tuple[int, str]] = {}
        out, fd = self.out, self.fd
        for k, (raw, number) in enumerate(lines):
            if k % 512 == 0:
                report(done + k)
            name = os.fsdecode(raw)
            self.images.append(name)
            if "\r" in name:
                continue  # _read_list's finding: neither the image nor its label opens
            if not name.strip(" \t"):
                out.add("blank-line", "warning", list_path, number,
                        "a blank line: darknet counts it as an image it cannot open (\"Cannot "
                        "load image\", bad.list) and trains that slot of the batch on nothing",
                        fix="delete blank lines")
                continue
            key: object = name
            loads = False
            try:
                st = os.stat(name, dir_fd=fd)
            except (OSError, ValueError) as err:
                self._missing_image(list_path, number, name, err)
            else:
                key = (st.st_dev, st.st_ino)
                loads = self._check_image(list_path, number, name, st)
            if key in seen:
                out.add("duplicate-image", "warning", list_path, number,
                        f"{_q(name)} is listed already at line {seen[key][0]}: darknet draws it "
                        f"twice as often", fix="list each image once")
            else:
                seen[key] = (number, name)
            if loads:  # data.c:load_data_detection skips an image it cannot load, labels too
                self._check_label(list_path, number, name)
        report(done + len(lines))
        return seen

    def _missing_image(self, list_path: str, number: int, name: str, err: Exception) -> None:
        why = getattr(err, "strerror", None) or str(err)
        hints = []
        if name != name.rstrip(" \t"):
            hints.append("the name ends with a space or tab, which darknet keeps")
        if "\\" in name:
            hints.append("a Windows path: darknet on Linux reads a backslash as part of the "
                         "name")
        if "\r" in name:
            hints.append("the name ends with \\r")
        kind = "image-unreadable" if isinstance(err, PermissionError) else "image-missing"
        self.out.add(kind, "error", list_path, number,
                     f"{_q(name)} cannot be opened from {self.root}: {why}"
                     + (f" ({'; '.join(hints)})" if hints else "")
                     + ": darknet prints \"Cannot load image\" and trains that slot of the "
                       "batch on nothing (data.c:load_data_detection)",
                     fix="fix the path (relative paths are from the folder darknet runs in, "
                         "not from the list's) or delete the line")

    def _check_image(self, list_path: str, number: int, name: str, st: os.stat_result) -> bool:
        """Whether darknet can load the image (as far as stat, access and,
        with ``images``, its header tell)."""
        why = None
        if stat.S_ISDIR(st.st_mode):
            why = "a folder, not an image"
        elif not stat.S_ISREG(st.st_mode):
            why = "not a regular file"
        elif st.st_size == 0:
            why = "an empty file"
        elif not os.access(name, os.R_OK, dir_fd=self.fd):
            why = "no read permission"
        elif self.read_images:
            why = _image_header_problem(_resolve(self.root, name))
        if why is not None:
            self.out.add("image-unreadable", "error", list_path, number,
                         f"{_q(name)}: {why}: darknet (OpenCV's imread) cannot read it, prints "
                         f"\"Cannot load image\" and trains that slot of the batch on nothing",
                         fix="replace the file or delete the line")
        return why is None

    def _check_label(self, list_path: str, number: int, name: str) -> None:
        out = self.out
        label = label_path(name)
        if not label.endswith(".txt"):
            out.add("label-extension", "error", list_path, number,
                    f"{_q(name)}: darknet derives no .txt label path from this extension "
                    f"(utils.c:replace_image_to_label knows .jpg .jpeg .png .bmp .ppm .tiff, "
                    f"lower or upper case): it prints \"Failed to infer label file name\" "
                    f"and reads {_q(label)} as the labels (no box)",
                    fix="convert the image to .jpg or .png (or rename an upper/lower-case "
                        "mix such as .Jpg)")
            return
        try:
            fd = os.open(label, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0),
                         dir_fd=self.fd)
        except (OSError, ValueError) as err:
            self._missing_label(list_path, number, name, label, err)
            return
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                out.add("label-unreadable", "error", label, None,
                        "a folder: darknet's fopen succeeds, fscanf reads no box "
                        "(data.c:read_boxes): the image trains with no box",
                        fix="a label file, one line `class x y w h` per box")
                return
            if st.st_size > _MAX_LABEL_BYTES:
                out.add("label-unreadable", "error", label, None,
                        f"{st.st_size} bytes: not a label file", fix="check the file")
                return
            data = os.read(fd, st.st_size + 1) if st.st_size else b""
            while len(data) <= st.st_size and st.st_size:
                more = os.read(fd, 1 << 20)
                if not more:
                    break
                data += more
        except OSError as err:
            out.add("label-unreadable", "error", label, None,
                    f"cannot be read: {err.strerror}: the image trains with no box",
                    fix="check the file")
            return
        finally:
            os.close(fd)
        self.labels += self.counting
        self._check_boxes(label, data)

    def _missing_label(self, list_path: str, number: int, name: str, label: str,
                       err: Exception) -> None:
        why = getattr(err, "strerror", None) or str(err)
        fix = "write the label file (one line `class x y w h` per box; an empty file for an " \
              "image without objects)"
        if "/images/" in label:
            other = label.replace("/images/", "/labels/", 1)
            try:
                os.stat(other, dir_fd=self.fd)
                fix = (f"the labels are at {_q(other)} (a YOLOv5/Ultralytics layout): darknet "
                       f"replaces /images/ only in COCO's train2014/val2014/train2017/val2017 "
                       f"folders: put each .txt beside its image")
            except (OSError, ValueError):
                pass
        kind = "label-unreadable" if isinstance(err, PermissionError) else "label-missing"
        self.out.add(kind, "error", list_path, number,
                     f"{_q(name)}: its label file {_q(label)} cannot be opened: {why}: darknet "
                     f"prints \"Can't open label file\", adds it to bad.list and trains the "
                     f"image as one with no object (data.c:read_boxes)", fix=fix)

    def _check_boxes(self, label: str, data: bytes) -> None:
        out = self.out
        if _GOOD_FILE.fullmatch(data):
            boxes = _parse_good(data)
        else:
            boxes, stop = read_boxes(data)
            self._bad_lines(label, data, boxes, stop)
        if not boxes:
            self.empty += self.counting
            return
        if self.max_boxes is not None and len(boxes) > self.max_boxes:
            out.add("too-many-boxes", "warning", label, None,
                    f"{len(boxes)} boxes, more than the last head's max={self.max_boxes}: "
                    f"darknet keeps {self.max_boxes} drawn at random each time "
                    f"(data.c:fill_truth_detection)",
                    fix=f"set max={len(boxes)} or more in the cfg's [yolo] sections")
        classes = self.classes
        kept = 0
        lowest_w = 1.0 / self.net_w if self.net_w > 0 else 0.0
        lowest_h = 1.0 / self.net_h if self.net_h > 0 else 0.0
        for b in boxes:
            if b.id >= classes or b.id < 0:
                what = ("darknet prints \"Wrong annotation: class_id\" and drops the box "
                        "(data.c:fill_truth_detection)" if b.id >= classes else
                        "darknet does not check a negative id and uses it as an index in the "
                        "head's loss (memory before the class array)")
                out.add("class-id", "error", label, b.line,
                        f"class id {b.id} is outside [0, {classes}): {what}",
                        fix=f"class ids are 0 to {classes - 1} (the line of the .names file "
                            f"minus 1)")
                continue
            fate = _fate(b, lowest_w, lowest_h)
            bad = [f"{k}={v:g}" for k, v in (("x", b.x), ("y", b.y), ("w", b.w), ("h", b.h))
                   if not 0 < v <= 1]
            if b.w <= 0 or b.h <= 0 or (math.isfinite(b.w) and math.isfinite(b.h)
                                        and (b.w == 0 or b.h == 0)):
                out.add("box-size", "error", label, b.line,
                        f"a box of size {b.w:g} x {b.h:g}: darknet drops it silently (smaller "
                        f"than a pixel, data.c:fill_truth_detection)",
                        fix="delete the line, or give the box its width and height")
            elif bad:
                out.add("box-coords", "error", label, b.line,
                        f"{', '.join(bad)} outside (0, 1] (x y w h are fractions of the image's "
                        f"width and height): {fate}",
                        fix="x = center / image width, y = center / image height, w and h "
                            "the box's size over the image's; all in (0, 1]")
            elif fate.startswith("dropped silently"):
                out.add("box-tiny", "warning", label, b.line,
                        f"a box of {b.w * self.net_w:.2f} x {b.h * self.net_h:.2f} pixels at "
                        f"the network's {self.net_w} x {self.net_h}: {fate}",
                        fix="delete it, or train at a larger width/height")
            if fate.startswith(("kept", "clipped", "NaN")):
                kept += 1
                self.per_class[b.id] += self.counting
        if not kept:
            self.empty += self.counting

    def _bad_lines(self, label: str, data: bytes, boxes: Sequence[_Box], stop: int | None
                   ) -> None:
        bad: list[tuple[int, str]] = []
        good = 0
        for number, line in enumerate(data.split(b"\n"), 1):
            tokens = line.split()
            if not tokens:
                continue
            if (len(tokens) == 5 and _GOOD_INT.fullmatch(tokens[0])
                    and all(_GOOD_NUM.fullmatch(t) for t in tokens[1:])):
                good += 1
            else:
                bad.append((number, os.fsdecode(line.strip())[:200]))
        if not bad:
            return
        number, text = bad[0]
        more = f" ({len(bad) - 1} more such line(s) in the file)" if len(bad) > 1 else ""
        if stop is not None and stop <= number:
            what = (f"darknet's fscanf stops at line {stop}: it keeps the {len(boxes)} box(es) "
                    f"before and ignores the rest of the file")
        else:
            what = (f"darknet reads the numbers five at a time across lines (fscanf), so it "
                    f"reads {len(boxes)} box(es) where the file has {good} good line(s), the "
                    f"ones after this line shifted")
        self.out.add("label-format", "error", label, number,
                     f"{_q(text)} is not five numbers `class x y w h`{more}: {what} "
                     f"(data.c:read_boxes)", fix="one line per box: an integer class id, then "
                                                "four numbers")


def _parse_good(data: bytes) -> list[_Box]:
    boxes = []
    for number, line in enumerate(data.split(b"\n"), 1):
        t = line.split()
        if t:
            boxes.append(_Box(int(t[0]), float(t[1]), float(t[2]), float(t[3]), float(t[4]),
                              number))
    return boxes


def _fate(b: _Box, lowest_w: float, lowest_h: float) -> str:
    """What ``data.c:correct_boxes`` and ``fill_truth_detection`` do with a box
    (no augmentation: no shift, scale or flip)."""
    x, y, w, h = b.x, b.y, b.w, b.h
    if x == 0 and y == 0:
        return ("dropped: darknet prints \"Wrong annotation: x = 0, y = 0\" "
                "(data.c:correct_boxes marks x = y = 0)")
    if x + w / 2 < 0 or y + h / 2 < 0 or x - w / 2 > 1 or y - h / 2 > 1:
        return ("dropped: the box is outside the image (data.c:correct_boxes), \"Wrong "
                "annotation\"")
    if any(math.isnan(v) for v in (x, y, w, h)):
        return "NaN passes every check of data.c:fill_truth_detection and reaches the loss"
    left, right = max(0.0, min(1.0, x - w / 2)), max(0.0, min(1.0, x + w / 2))
    top, bottom = max(0.0, min(1.0, y - h / 2)), max(0.0, min(1.0, y + h / 2))
    cw, ch = max(0.0, min(1.0, right - left)), max(0.0, min(1.0, bottom - top))
    if cw < lowest_w or ch < lowest_h or cw == 0 or ch == 0:
        return ("dropped silently: smaller than a pixel of the network input "
                "(data.c:fill_truth_detection)")
    if (left, right, top, bottom) != (x - w / 2, x + w / 2, y - h / 2, y + h / 2):
        return ("clipped: darknet trains on the part inside the image (data.c:correct_boxes "
                "constrain)")
    return "kept"


def _image_header_problem(path: str) -> str | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                w, h = im.size
    except UnidentifiedImageError:
        return "not an image Pillow knows (its header)"
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        return f"its header cannot be read ({err})"
    if w <= 0 or h <= 0:
        return f"its header says {w} x {h} pixels"
    return None


# -- the .data file's backup folder ---------------------------------------------------

def _basecfg(cfg_path: str) -> str:
    """``utils.c:basecfg``: after the last ``/`` (then the last ``\\``), up
    to the first ``.``: the name of the weights files darknet writes."""
    name = cfg_path.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    return name.split(".", 1)[0]


def _check_backup(data_path: str, root: str, value: str, line: int | None,
                  config: Config | None, raw_lines: Mapping[str, str], out: _Findings) -> None:
    default = " (the default: backup= is not set)" if line is None else ""
    path = _resolve(root, value)
    base = _basecfg(config.path) if config is not None else "CFG"
    first = (f"darknet trains, then fails at its first save, {value.rstrip('/')}/{base}_last."
             f"weights after `savelast` iterations (100 by default) or {base}_final.weights at "
             f"the end (detector.c:train_detector, save_weights: \"Couldn't open file\")")
    try:
        st = os.stat(path)
    except (OSError, ValueError) as err:
        out.add("backup-missing", "error", data_path, line,
                f"backup={value}{default} does not exist from {root} "
                f"({getattr(err, 'strerror', None) or err}){_path_hint(raw_lines.get('backup'), value)}"
                f": {first}", fix=f"mkdir -p {value}" + ("" if line is not None else
                                                      ", or add backup=backup/"))
        return
    if not stat.S_ISDIR(st.st_mode):
        out.add("backup-missing", "error", data_path, line,
                f"backup={value}{default} is not a folder: {first}",
                fix="give backup= a folder")
        return
    if not os.access(path, os.W_OK | os.X_OK):
        out.add("backup-unwritable", "error", data_path, line,
                f"backup={value}{default}: no permission to write there: {first}",
                fix=f"chmod u+wx {value}, or another folder")
    if config is not None:
        iterations = _option_int(_net_options(config).get("max_batches", ("0", 0))[0], 0)
        longest = max(len("_final.weights"), len(f"_{iterations}.weights"))
        size = len(os.fsencode(value)) + 1 + len(os.fsencode(base)) + longest
        if size >= _BACKUP_BUFF:
            out.add("backup-path-too-long", "error", data_path, line,
                    f"{value}/{base}_final.weights is {size} bytes: darknet writes the names "
                    f"of the weights into char buff[256] (detector.c:train_detector) and "
                    f"overflows it", fix="a shorter backup= path or cfg name")


# -- the cfg --------------------------------------------------------------------------

def _check_cfg(cfg: PathArg | Config, out: _Findings) -> tuple[Config | None, str]:
    """The cfg's findings; the Config, or None when it does not parse."""
    source = cfg_text(cfg)
    path = cfg.path if isinstance(cfg, Config) else "<string>" if source else fs_path(cfg, "cfg")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CfgWarning)
            config = parse(cfg, stacklevel=3)
    except CfgError as err:
        # diagnose.py: every head whose convolution's filters= does not fit its classes=
        heads = _head_inputs(path, source, err, "")
        if heads is not None:
            out.adopt(heads, path, heads.edits[0].line if heads.edits else None)
        else:
            out.adopt(Finding("cfg-error", "error", str(err), fix="fix the cfg line the "
                              "message names"), path, err.line if err.line > 0 else None)
        return None, path
    for f in _head_findings(config):
        out.adopt(f, path, f.layer.line if f.layer else None)
    _check_net(config, out)
    return config, config.path


def _option_int(text: str | None, default: int) -> int:
    """``option_list.c:option_find_int``: C's ``atoi`` (the core's) of the
    option's text as the core read it (spaces deleted), or ``default``. The
    core types the options inference needs (``Config.net``, ``layer.attrs``);
    the training-only ones checked here (``batch``, ``subdivisions``,
    ``max_batches``, ``steps``, a head's ``max``) it keeps as text."""
    return default if text is None else atoi(text)


def _net_options(config: Config) -> dict[str, tuple[str, int]]:
    """The [net] options darknet reads: the first line of a key (option_find)."""
    opts: dict[str, tuple[str, int]] = {}
    for k, v, line in core_config(config).net_options:
        opts.setdefault(k, (v, line))
    return opts


def _net_line(config: Config) -> int:
    for number, line in enumerate(config.source.split(b"\n"), 1):
        if line.strip().lower() in (b"[net]", b"[network]"):
            return number
    return 1


def _check_net(config: Config, out: _Findings) -> None:
    """``parser.c:parse_net_options`` and ``detector.c:train_detector`` on
    the [net] options training uses."""
    path = config.path
    opts = _net_options(config)
    net_line = _net_line(config)

    def get(key: str, default: int) -> tuple[int, int]:
        if key in opts:
            text, line = opts[key]
            return _option_int(text, default), line
        return default, net_line

    batch, batch_line = get("batch", 1)
    subdivisions, sub_line = get("subdivisions", 1)
    if subdivisions == 0:
        out.add("batch", "error", path, sub_line,
                "subdivisions=0: darknet divides batch by it (parser.c:parse_net_options) and "
                "crashes", fix="subdivisions=1 or more, a divisor of batch")
    elif subdivisions < 0 or batch <= 0 or batch // subdivisions == 0:
        out.add("batch", "error", path, batch_line,
                f"batch={batch}, subdivisions={subdivisions}: a mini-batch of "
                f"{int(batch / subdivisions) if subdivisions else 0} images "
                f"(parser.c:parse_net_options: batch /= subdivisions): nothing to train on",
                fix="batch=64, subdivisions a divisor of it (1, 2, 4, ... 64)")
    else:
        mini = int(batch / subdivisions)
        if batch % subdivisions:
            out.add("batch", "warning", path, batch_line,
                    f"batch={batch} is not divisible by subdivisions={subdivisions} (line "
                    f"{sub_line}): darknet trains on {mini} x {subdivisions} = "
                    f"{mini * subdivisions} images per iteration (parser.c:parse_net_options: "
                    f"batch /= subdivisions, an integer division)",
                    fix=f"make subdivisions a divisor of batch={batch}")
        actual = mini * subdivisions
        if actual == 1:
            out.add("batch", "error", path, batch_line,
                    "batch=1: `detector train` refuses it (detector.c:train_detector: \"You "
                    "set incorrect value batch=1 for Training\")",
                    fix="batch=64, subdivisions=16 (or up to 64 if memory is short)")
        elif actual < 8:
            out.add("batch", "warning", path, batch_line,
                    f"{actual} images per iteration: darknet warns that it is lower than 64 "
                    f"(detector.c:train_detector)", fix="batch=64")
    max_batches, mb_line = get("max_batches", 0)
    if max_batches <= 0:
        out.add("max-batches", "error", path, mb_line,
                f"max_batches={max_batches}: darknet's training loop runs while the iteration "
                f"is below it (detector.c:train_detector): it saves the weights unchanged at "
                f"once", fix="max_batches = classes x 2000 (at least 6000), as AlexeyAB's "
                             "README says")
    policy = opts.get("policy", ("constant", net_line))[0]
    policies = ("random", "poly", "constant", "step", "exp", "sigmoid", "steps", "sgdr")
    if policy not in policies:
        out.add("policy", "warning", path, opts["policy"][1],
                f"policy={policy}: darknet does not know it and uses constant "
                f"(parser.c:get_policy)", fix="policy=steps (or one of " + ", ".join(policies)
                + ")")
    if policy in ("steps", "sgdr"):
        _check_steps(config, opts, policy, max_batches, net_line, out)
    last = config[len(config) - 1] if len(config) else None
    width, height = config.net.width, config.net.height
    # parser.c: the last layer's type is YOLO, REGION or DETECTION (not GAUSSIAN_YOLO)
    if (last is not None and last.kind.head and not isinstance(last.attrs, GaussianYoloAttrs)
            and (width % 32 or height % 32)):
        key = "width" if width % 32 else "height"
        out.add("input-size", "warning", path, opts.get(key, ("", net_line))[1],
                f"width={width}, height={height}: not multiples of 32, which darknet warns "
                f"about for a network ending in a [{last.type}] head (parser.c:"
                f"parse_network_cfg_custom); its strides of 32 cut the image's edges, and "
                f"random=1 resizes to multiples of 32",
                fix=f"width={max(32, round(width / 32) * 32)}, "
                    f"height={max(32, round(height / 32) * 32)}")


def _check_steps(config: Config, opts: Mapping[str, tuple[str, int]], policy: str,
                 max_batches: int, net_line: int, out: _Findings) -> None:
    path = config.path
    steps = opts.get("steps")
    scales = opts.get("scales")
    if policy == "steps" and (steps is None or scales is None):
        out.add("steps", "error", path, net_line,
                "policy=steps without steps= and scales=: darknet stops (parser.c:"
                "parse_net_options: \"STEPS policy must have steps and scales\")",
                fix="steps=80%,90% of max_batches and scales=.1,.1")
        return
    if steps is None:
        return
    text, line = steps
    # parser.c:parse_net_options: n = 1 + the commas before a '#'; then, for each i,
    # atoi(l), l = strchr(l, ',') + 1, and the same walk over scales= and seq_scales=.
    n = 1 + text.split("#", 1)[0].count(",")
    values = [atoi(v) for v in text.split(",")[:n]]
    for key in ("scales", "seq_scales"):
        if key in opts and opts[key][0].count(",") < n - 1:
            out.add("steps", "error", path, opts[key][1],
                    f"{key}= has {opts[key][0].count(',') + 1} value(s) for {n} steps: darknet "
                    f"reads past its end (parser.c:parse_net_options: strchr() returns NULL, "
                    f"then NULL + 1) and crashes", fix=f"give {key}= {n} values, one per step")
    beyond = [v for v in values if v > max_batches]
    if beyond and max_batches > 0:
        out.add("steps", "warning", path, line,
                f"steps {', '.join(map(str, beyond))} beyond max_batches={max_batches}: "
                f"training ends before the learning rate changes there (network.c:"
                f"get_current_rate)", fix=f"steps={int(max_batches * .8)},"
                                          f"{int(max_batches * .9)} (80% and 90% of "
                                          f"max_batches)")
    if any(b < a for a, b in itertools.pairwise(values)):
        out.add("steps", "warning", path, line,
                f"steps={text} do not increase: darknet stops at the first step above the "
                f"iteration (network.c:get_current_rate), so a later smaller one never applies",
                fix="list the steps in increasing order")


# -- plot -------------------------------------------------------------------------------

_DPI = 100


def plot(report: DataCheck, path: PathArg) -> Path:
    """Draw a bar chart of the boxes per class of ``report`` (a
    :func:`check_data` result), classes without a box marked in red.

    Args:
        report: what :func:`check_data` returned.
        path: where to write the PNG, atomically (a temporary in the same
            folder, fsync, rename). A file the check read (the ``.data``, the
            cfg, the ``.names``, a list, an image or a label file, by inode)
            is refused with OutputIsInputError.

    Returns:
        ``path`` as a Path.

    Raises:
        ImportError: matplotlib is not installed (``pip install 'yolo_io[plot]'``).
        OutputIsInputError: ``path`` is one of the files the check read.
        OSError: ``path`` cannot be written; it is left as it was.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError("yolo_io's check-data plot needs matplotlib: pip install "
                          "'yolo_io[plot]'") from err
    from .._writing.atomic import (
        WriterStream,
        atomic_file,
        refuse_inputs,
        resolve_target,
    )

    target = resolve_target(path)
    refuse_inputs(target, report._inputs)
    refuse_inputs(target, _dataset_files(target, report))
    n = len(report.boxes_per_class)
    counts = list(report.boxes_per_class)
    names = [report.class_name(i) for i in range(n)]
    height = max(3.0, min(60.0, 0.25 * n + 1.5))
    fig = Figure(figsize=(10, height), dpi=_DPI, layout="constrained")
    ax = fig.subplots()
    colors = ["tab:blue" if c else "tab:red" for c in counts]
    ax.barh(range(n), counts, color=colors)
    ax.set_yticks(range(n), [f"{i} {name}" for i, name in enumerate(names)],
                  fontsize=8 if n > 40 else 10)
    ax.invert_yaxis()
    for i, c in enumerate(counts):
        if c == 0:
            ax.text(0, i, " no box", va="center", color="tab:red", fontsize=8)
    ax.set_xlabel("boxes (kept by darknet)")
    fig.suptitle(shown(f"{Path(report.data).name}: {report.boxes} boxes in "
                       f"{report.train_images + report.valid_images} images, "
                       f"{len(report.classes_without_boxes)} class(es) without a box"))
    with atomic_file(target) as writer:
        fig.savefig(WriterStream(writer), dpi=_DPI, format="png")  # type: ignore[arg-type]
    return Path(target)


def _dataset_files(target: str, report: DataCheck) -> Iterator[tuple[str, str]]:
    """The images and label files of ``report``, when ``target`` exists (a
    new file cannot be one of them)."""
    if not os.path.exists(target):
        return
    for image in report._images:
        yield "an image of the lists", _resolve(report.root, image)
        yield "a label file", _resolve(report.root, label_path(image))

