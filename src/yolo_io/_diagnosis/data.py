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
import struct
import warnings
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

from .._base.errors import CfgError, CfgWarning, FormatError
from .._base.paths import PathArg, fs_path, shown
from .._base.progress import Progress, Reporter
from .._model.attrs import GaussianYoloAttrs, RegionAttrs, YoloAttrs
from .._model.config import CfgLayer, Config, atoi, cfg_text, core_config, parse
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
"""Findings kept per kind (``DataCheck.counts`` and ``totals`` count every
one found): a dataset whose 100,000 label files are all missing gives 1000
findings, not 100,000."""

_RANK = {"error": 0, "warning": 1, "info": 2}
_SHOW_PER_KIND = 5  # findings of one kind that str() prints
_MAX_FINDINGS_PER_FILE = 20  # findings kept per label file (the rest are counted)
_MAX_CLASSES = 100_000  # a class count above it is not one (YOLO9000 has 9418 classes)
_LIST_CLASSES = 1000  # classes str() lists one per line
_ECHO = 300  # characters of a name or value from the files that a message repeats
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


# data.c:read_boxes: fscanf(file, "%d %f %f %f %f", ...) == 5, repeated, as glibc's
# scanf reads it (checked against a C program of read_boxes' loop, glibc 2.36, 64-bit):
# %d and %f skip white space, then take the longest prefix of a number. %d is strtol's
# long cut to an int (4294967296 reads as 0). %f is rounded to a C float; it takes an
# exponent without digits as none ("1e", "1e+", "0x1p": glibc before its fix of bug
# 12701; later ones stop there), "0x." as 0; "0x" without a digit, "." and a partial
# "infinity" ("infin") fail, and reading stops; after "nan" it stops at a "(".
_WS = rb"[ \t\n\v\f\r]*"
_SCAN_INT = re.compile(_WS + rb"([+-]?[0-9]+)")
_SCAN_FLOAT = re.compile(
    _WS + rb"([+-]?(?:0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]*)(?:[pP][+-]?[0-9]*)?"
    rb"|(?!0[xX])(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]*)?"
    rb"|[iI][nN][fF](?:[iI][nN][iI][tT][yY]|(?![iI]))|[nN][aA][nN]))")
# A token glibc reads with an exponent without digits (which later glibc refuses).
_DANGLING_EXPONENT = re.compile(rb"[+-]?(?:0[xX][^pP]*[pP]|(?!0[xX])[^eE]*[eE])[+-]?")
# A file of well-formed lines: five numbers each (a plain int, four plain floats).
_NUM = rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
# Atomic lines, a possessive repeat: no backtracking state kept per line (a plain
# "(...)*" keeps about 3 kB per line: 1 GB for a label file of 300,000 lines).
_GOOD_FILE = re.compile(rb"(?>[ \t\r\f\v]*(?:[+-]?[0-9]+(?:[ \t\r\f\v]+" + _NUM
                        + rb"){4}[ \t\r\f\v]*)?(?:\n|\Z))*+")
_GOOD_INT = re.compile(rb"[+-]?[0-9]+")
_GOOD_NUM = re.compile(_NUM)
_F32 = struct.Struct("f")
_CHUNK = 1 << 16  # bytes of a well-formed label file split into tokens at a time


class _Box(NamedTuple):
    """A box as darknet reads it: ``id`` an int, ``x y w h`` C floats."""

    id: int
    x: float
    y: float
    w: float
    h: float
    line: int
    """The line of its class id (in a well-formed file, which has one box
    per line: the box's index, made a line by :func:`_line_numbers`)."""
    written: int | None = None
    """The class id as written, when it does not fit a C int (``id`` is
    then what ``%d`` made of it)."""


class _Boxes:
    """The boxes ``data.c:read_boxes`` reads from ``data``, one at a time
    (none is kept); ``stop``, after the iteration: the line where fscanf
    stopped early, or None (it read to the end)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.stop: int | None = None

    def __iter__(self) -> Iterator[_Box]:
        data = self.data
        pos = 0
        line, counted = 1, 0  # the line number at byte `counted`, counted forward once
        while True:
            m = _SCAN_INT.match(data, pos)
            if m is None:
                break
            start = m.start(1)
            line += data.count(b"\n", counted, start)
            counted = start
            values: list[float] = []
            end = m.end()
            for _ in range(4):
                f = _SCAN_FLOAT.match(data, end)
                if f is None:
                    break
                values.append(_c_float(f.group(1)))
                end = f.end()
            if len(values) < 4:  # fscanf returns less than 5: the loop ends, the record dropped
                break
            written = _c_int_written(m.group(1))
            ident = _c_int(m.group(1))
            x, y, w, h = values
            yield _Box(ident, x, y, w, h, line, None if written == ident else written)
            pos = end
        rest = len(data) - pos
        skipped = rest - len(data[pos:].lstrip(b" \t\n\v\f\r")) if rest else 0
        if skipped < rest:
            self.stop = line + data.count(b"\n", counted, pos + skipped)


def read_boxes(data: bytes) -> tuple[list[_Box], int | None]:
    """The boxes ``data.c:read_boxes`` reads from a label file of ``data``
    (fscanf ``"%d %f %f %f %f"`` until it does not match five: lines do not
    matter, white space does not either), and the line where it stopped
    early (None: it read to the end). As glibc's scanf reads: see
    :class:`_Boxes`; :meth:`_Scan._check_boxes` streams them instead."""
    scan = _Boxes(data)
    boxes = list(scan)
    return boxes, scan.stop


def _good_boxes(data: bytes) -> Iterator[_Box]:
    """The boxes of a file :data:`_GOOD_FILE` matches (five plain numbers
    per line), a chunk of lines at a time; ``line`` is the box's index."""
    index, pos, size = 0, 0, len(data)
    while pos < size:
        end = data.find(b"\n", pos + _CHUNK)
        end = size if end < 0 else end + 1
        tokens = data[pos:end].split()
        pos = end
        ids = tokens[0::5]
        del tokens[0::5]
        f32 = array("f", map(float, tokens))  # the C float each %f stores
        values = f32.tolist()
        for k, text in enumerate(ids):
            x, y, w, h = values[4 * k:4 * k + 4]
            if len(text) < 10:
                yield _Box(int(text), x, y, w, h, index)
            else:
                ident = _c_int(text)
                written = _c_int_written(text)
                yield _Box(ident, x, y, w, h, index, None if written == ident else written)
            index += 1


def _line_numbers(data: bytes) -> list[int]:
    """The 1-based numbers of the lines that are not blank: the line of each
    box of a well-formed file, by its index."""
    numbers, number, pos = [], 1, 0
    while True:
        end = data.find(b"\n", pos)
        if data[pos:end if end >= 0 else len(data)].strip():
            numbers.append(number)
        if end < 0:
            return numbers
        number, pos = number + 1, end + 1


def _c_int_written(text: bytes) -> int:
    """The integer ``text`` writes (Python's int() refuses more than 4300
    digits: such a number is given as +-10**40, as far out of an int)."""
    digits = text.lstrip(b"+-").lstrip(b"0")
    if len(digits) > 40:
        return -10 ** 40 if text.startswith(b"-") else 10 ** 40
    return int(text)


def _c_int(text: bytes) -> int:
    """What glibc's ``%d`` stores for the digits ``text``: strtol's long
    (clamped to 64 bits), cut to a 32-bit int."""
    v = max(-(1 << 63), min((1 << 63) - 1, _c_int_written(text)))
    return (v + (1 << 31)) % (1 << 32) - (1 << 31)


def _c_float(text: bytes) -> float:
    """What glibc's ``%f`` stores for ``text`` (a :data:`_SCAN_FLOAT` match):
    a C float (rounded through a double: a decimal within a hair of halfway
    between two floats may round the other way than strtof)."""
    t = text.lower()
    sign = -1.0 if t.startswith(b"-") else 1.0
    body = t.lstrip(b"+-")
    if body.startswith(b"inf"):
        return sign * math.inf
    if body.startswith(b"nan"):
        return math.nan
    if body.startswith(b"0x"):
        mantissa, _, exponent = body[2:].partition(b"p")
        if mantissa.strip(b".") == b"":
            return sign * 0.0
        if not exponent.lstrip(b"+-"):
            exponent = b"0"
        try:
            value = float.fromhex(f"0x{mantissa.decode()}p{exponent.decode()}")
        except OverflowError:
            value = math.inf
    else:
        mantissa, _, exponent = body.partition(b"e")
        value = float(mantissa + b"e" + exponent if exponent.lstrip(b"+-") else mantissa)
    return _f32(sign * value)


def _f32(value: float) -> float:
    """``value`` as a C float (float) stores it."""
    try:
        return float(_F32.unpack(_F32.pack(value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


# -- the report -----------------------------------------------------------------

@dataclass(frozen=True)
class DataFinding(Finding):
    """One thing :func:`check_data` found, at ``path``:``line`` (``line``
    None: the file as a whole). ``kind`` is one of: ``"data-refused-line"``,
    ``"data-unknown-key"``, ``"data-default"``, ``"data-classes"``,
    ``"data-names"``, ``"classes-unknown"``, ``"names-missing"``, ``"names-count"``,
    ``"list-missing"``,
    ``"list-empty"``, ``"crlf"``, ``"nul-byte"``, ``"blank-line"``,
    ``"image-missing"``, ``"image-unreadable"``, ``"duplicate-image"``,
    ``"train-valid-overlap"``, ``"valid-is-train"``, ``"label-extension"``,
    ``"label-missing"``, ``"label-unreadable"``,
    ``"label-format"``, ``"class-id"``, ``"box-coords"``, ``"box-size"``,
    ``"box-tiny"``, ``"too-many-boxes"``, ``"backup-missing"``,
    ``"backup-unwritable"``, ``"backup-path-too-long"``, and for the cfg:
    ``"cfg-error"``, ``"head-missing"``, ``"head-filters"``, ``"heads-disagree"``, ``"batch"``,
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
    ``errors``, ``counts`` (findings per kind) and ``totals`` (per severity),
    both of every finding found, also those beyond the
    :data:`MAX_FINDINGS_PER_KIND` kept per kind (or the 20 kept per label
    file); a summary of the dataset, ``to_dict()`` and a printable report."""

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
    """The class count labels are checked against: the cfg's (what ``detector
    train`` uses: the last [yolo], [Gaussian_yolo] or [region] head's, else
    the last layer's, a [detection]), else a valid ``classes=``, else the
    names'; 0 when none of them is known (class ids are then not checked)."""
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
    """:attr:`boxes` per class id, ``0 .. classes - 1`` (with no class count,
    up to the largest id kept); at most 100,000 entries."""
    images_without_boxes: int
    """Images of the train list whose label file darknet opens but keeps no
    box from."""
    findings: tuple[DataFinding, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    """Findings found per kind (kept or not)."""
    totals: Mapping[str, int] = field(default_factory=dict)
    """Findings found per severity (``"error"``, ``"warning"``, ``"info"``),
    kept or not."""
    _inputs: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    _images: tuple[str, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        """No finding is an error."""
        return not any(f.severity == "error" for f in self.findings)

    @property
    def errors(self) -> tuple[DataFinding, ...]:
        """The error findings kept (``totals["error"]`` counts all)."""
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def classes_without_boxes(self) -> tuple[int, ...]:
        """The class ids no kept box has."""
        return tuple(i for i, n in enumerate(self.boxes_per_class) if n == 0)

    def class_name(self, i: int) -> str:
        return self.class_names[i] if i < len(self.class_names) else f"class {i}"

    def _total(self, severity: str) -> int:
        return self.totals.get(severity, sum(f.severity == severity for f in self.findings))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the files, ``ok``, the summary, ``counts`` and
        ``totals`` (every finding found), ``findings_kept`` and
        ``findings`` (those kept)."""
        return {
            "data": self.data, "cfg": self.cfg, "root": self.root, "train": self.train,
            "valid": self.valid, "ok": self.ok, "classes": self.classes,
            "class_names": list(self.class_names), "train_images": self.train_images,
            "valid_images": self.valid_images, "labels": self.labels, "boxes": self.boxes,
            "boxes_per_class": list(self.boxes_per_class),
            "classes_without_boxes": list(self.classes_without_boxes),
            "images_without_boxes": self.images_without_boxes, "counts": dict(self.counts),
            "totals": {k: self._total(k) for k in _RANK},
            "findings_kept": len(self.findings),
            "findings": [f.to_dict() for f in self.findings]}

    def __str__(self) -> str:
        errors, warns = self._total("error"), self._total("warning")
        if errors:
            head = f"{self.data}: {errors} error(s), {warns} warning(s): darknet would fail or " \
                   f"train on something else than these files say"
        else:
            head = f"{self.data}: ready to train" + (f" ({warns} warning(s))" if warns else "")
        found = sum(self.counts.values())
        if found > len(self.findings):
            head += (f" ({found} finding(s) found, {len(self.findings)} kept: at most "
                     f"{MAX_FINDINGS_PER_KIND} of a kind, {_MAX_FINDINGS_PER_FILE} per label "
                     f"file)")
        out = [shown(head)]
        kept: dict[str, int] = {}
        last: dict[str, int] = {}
        for i, f in enumerate(self.findings):
            kept[f.kind] = kept.get(f.kind, 0) + 1
            last[f.kind] = i
        shown_per_kind: dict[str, int] = {}
        for i, f in enumerate(self.findings):
            k = shown_per_kind.get(f.kind, 0)
            shown_per_kind[f.kind] = k + 1
            if k < _SHOW_PER_KIND:
                out.append(str(f))
            if i == last[f.kind]:
                more = kept[f.kind] - min(kept[f.kind], _SHOW_PER_KIND)
                lost = self.counts.get(f.kind, kept[f.kind]) - kept[f.kind]
                parts = []
                if more:
                    parts.append(f"{more} more in --json / to_dict()")
                if lost:
                    parts.append(f"{lost} more found but not kept")
                if parts:
                    out.append(f"... [{f.kind}]: " + ", ".join(parts))
        out.append(shown(f"paths relative to {self.root} (the folder darknet runs in)"))
        out.append(shown(f"train: {self.train}: {self.train_images} image(s); valid: "
                         f"{self.valid}: " + (f"{self.valid_images} image(s)" if self.valid_images
                                             or self.valid != self.train else "the train list")))
        out.append(f"train labels: {self.labels} file(s), {self.boxes} box(es) kept, "
                   f"{self.images_without_boxes} image(s) without a box")
        if self.boxes_per_class:
            listed = self.boxes_per_class[:_LIST_CLASSES]
            width = max(len(str(n)) for n in listed)
            for i, n in enumerate(listed):
                out.append(shown(f"  {i:>3} {self.class_name(i)}: {n:>{width}}"))
            if len(self.boxes_per_class) > len(listed):
                out.append(f"  ... and {len(self.boxes_per_class) - len(listed)} more classes "
                           f"(boxes_per_class in --json / to_dict())")
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
        self.kept: dict[str, int] = {}
        self.totals: dict[str, int] = dict.fromkeys(_RANK, 0)

    def add(self, kind: str, severity: str, path: str | None, line: int | None, message: str,
            fix: str | None = None) -> None:
        if self.count(kind, severity):
            self.items.append(DataFinding(kind, severity, message, fix,  # type: ignore[arg-type]
                                          path=path, line=line))

    def count(self, kind: str, severity: str, *, keep: bool = True) -> bool:
        """Counts a finding; whether it is to be kept (``keep`` and room for
        its kind)."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.totals[severity] += 1
        n = self.kept.get(kind, 0)
        if keep and n < MAX_FINDINGS_PER_KIND:
            self.kept[kind] = n + 1
            return True
        return False

    def adopt(self, finding: Finding, path: str, line: int | None) -> None:
        """A finding of the cfg diagnosis, at ``path``:``line``."""
        self.counts[finding.kind] = self.counts.get(finding.kind, 0) + 1
        self.totals[finding.severity] += 1
        self.kept[finding.kind] = self.kept.get(finding.kind, 0) + 1
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
    against ``classes=`` and the cfg's heads; with ``cfg``, a detection head
    to train, the heads' ``filters=`` against their ``classes=``, ``batch``
    against ``subdivisions``, ``steps``/``scales`` against ``max_batches``,
    width and height against 32; the image lists (Windows line endings, NUL
    bytes, blank lines, missing or unreadable images, duplicates, images in
    both lists, none loadable); each image's label file at the path darknet
    derives (:func:`label_path`): missing or not a file, lines that are not
    five numbers (read as glibc's fscanf reads them), class ids outside
    ``[0, classes)``, coordinates outside ``(0, 1]``, zero-size boxes; and
    counts boxes per class. Each finding has its file, line and fix; at most
    :data:`MAX_FINDINGS_PER_KIND` of a kind (and 20 of the boxes of one label
    file) are kept, all are counted. Memory does not grow with the class
    count or with a label file's boxes (none is kept).

    Relative paths are resolved as darknet resolves them: from the folder it
    runs in, ``root`` (default: the current folder); the image paths of the
    lists too (not from the list's folder).

    Args:
        data_file: darknet's ``.data`` file (a path: str, bytes or os.PathLike).
        cfg: the ``.cfg`` to train, optional (a path, cfg text or a Config):
            adds the cfg's checks, and labels are checked against its last
            [yolo]/[Gaussian_yolo]/[region] head's classes, else its last
            layer's, a [detection] (what darknet uses). Without it they are
            checked against ``classes=``, else the ``.names`` lines, else
            not at all (a ``classes-unknown`` note).
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
                fix=f"give it a value ({_cut(text)}VALUE) or delete the line")
    for key, (value, line) in options.items():
        if value is None:
            out.add("data-refused-line", "error", path, line,
                    f"{_q(key)} has no '=': darknet keeps it as a key without a value, and "
                    f"option_find() returns that first line: the default is used "
                    f"(option_list.c:read_option)", fix=f"write it as {_cut(key)}=VALUE")
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
                    f"{_cut(key)}= again: darknet uses the first one, at line {seen[key]} "
                    f"(option_list.c:option_find)", fix="delete one of them")
        else:
            seen[key] = line


def _q(name: str) -> str:
    """``repr(name)`` with the bytes that are not UTF-8 as ``\\xNN`` (not
    ``\\udcNN``); a long name cut to its first 300 characters."""
    text = re.sub(r"\\udc([89a-f][0-9a-f])", r"\\x\1", repr(name[:_ECHO]))
    return text if len(name) <= _ECHO else f"{text}... ({len(name)} characters)"


def _cut(text: str) -> str:
    """``text`` from a file, cut to its first 300 characters for a message."""
    return text if len(text) <= _ECHO else f"{text[:_ECHO]}... ({len(text)} characters)"


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
    head = _train_head(config, out) if config is not None else None

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
                f"names={_cut(names_value or '')}{' (the default)' if names_line is None else ''} "
                f"cannot be read from {root}: {err.strerror}"
                f"{_path_hint(raw_lines.get('names'), names_value or '')}: `detector train -map` "
                f"stops at once (get_labels_custom: file_error), detector test/map/demo too",
                fix="give names= the path of the .names file, one class name per line, from "
                    "the folder darknet runs in")
    classes_value, classes_line = _value(options, "classes", None)
    data_classes = _data_classes(data_path, classes_value, classes_line, names_count, out)
    head_classes = int(getattr(head.attrs, "classes", 0)) if head is not None else None
    if classes_value is None:
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
    # the count darknet trains with (the cfg's), else what the .data and .names say
    classes: int | None = head_classes if head_classes is not None else (
        data_classes if data_classes is not None else (
            names_count if names_count and names_count <= _MAX_CLASSES else None))
    if classes is None:
        out.add("classes-unknown", "info", data_path, classes_line,
                "no class count: no cfg with a head (--cfg), no valid classes= and no .names "
                "lines to count: class ids are not checked against one (only negative ones "
                "are found)", fix="pass the cfg (--cfg), or set classes= and names=")

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
    max_boxes = _option_int(head.options.get("max"), 200) if head is not None else None
    scan = _Scan(root, root_fd, classes, head, net_w, net_h, max_boxes, images, out)
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
        if train_lines and not scan.loadable:
            out.add("list-empty", "error", train_path, None,
                    f"none of its {len(train_lines)} entries is an image darknet can open: each "
                    f"is \"Cannot load image\" (data.c:load_data_detection), and every batch "
                    f"trains on nothing", fix="one image path per line, from the folder darknet "
                                              "runs in")
        scan.counting = False  # the summary is of the train list: what darknet trains on
        if valid_lines:
            valid_keys = scan.run(valid_path, valid_lines, report, len(train_lines or ()))
            if not scan.loadable:
                out.add("list-empty", "warning", valid_path, None,
                        f"none of its {len(valid_lines)} entries is an image darknet can open: "
                        f"`-map` measures nothing", fix="one image path per line, from the "
                                                        "folder darknet runs in")
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
    per_class = scan.per_class
    listed = classes if classes is not None else max(per_class, default=-1) + 1
    return DataCheck(
        data=data_path, cfg=cfg_path, root=root, train=train_path,
        valid=valid_path if not same else train_path, classes=classes or 0,
        class_names=tuple(class_names), train_images=len(train_lines or ()),
        valid_images=len(valid_lines or ()), labels=scan.labels,
        boxes=sum(per_class.values()),
        boxes_per_class=tuple(per_class.get(i, 0) for i in range(min(listed, _MAX_CLASSES))),
        images_without_boxes=scan.empty, findings=out.sorted(), counts=dict(out.counts),
        totals=dict(out.totals), _inputs=tuple(inputs),
        _images=tuple(scan.images))  # names as darknet reads them


def _train_head(config: Config, out: _Findings) -> CfgLayer | None:
    """``detector.c:train_detector``'s layer ``l``, whose classes and max
    boxes it trains with: the last [yolo], [Gaussian_yolo] or [region], else
    the last layer, a [detection] head (YOLOv1); None, and an error, when
    the last layer is no head."""
    heads = [layer for layer in config if layer.kind.grid_head]
    if heads:
        return heads[-1]
    last = config[len(config) - 1] if len(config) else None
    if last is not None and last.kind.head:
        return last
    where = f"its last layer is [{last.type}] (layer {last.index}, line {last.line})" \
        if last is not None else "it has no layer"
    out.add("head-missing", "error", config.path, last.line if last is not None else None,
            f"no [yolo], [Gaussian_yolo], [region] or [detection] head, and {where}: "
            f"`detector train` takes its classes and max boxes from that last layer "
            f"(detector.c:train_detector), 0 and 0: it keeps no box of any label file "
            f"(data.c:fill_truth_detection) and trains on nothing",
            fix="end the network with a detection head ([yolo] with classes= and the "
                "convolution before it with filters=(classes+5)*masks)")
    return None


def _data_classes(data_path: str, value: str | None, line: int | None,
                  names_count: int | None, out: _Findings) -> int | None:
    """``classes=`` as C's ``atoi`` reads it, when it is a class count (1 to
    100,000); else None and, when it is set, an error."""
    if value is None:
        return None
    digits = _SCAN_INT.match(os.fsencode(value))  # glibc's atoi: (int) strtol(value)
    n = _c_int(digits.group(1)) if digits else 0
    if 0 < n <= _MAX_CLASSES:
        return n
    read = "" if value.lstrip("+") == str(n) else f" (darknet reads it with C's atoi: {n})"
    what = "no class count" if n <= 0 else f"more than {_MAX_CLASSES:,} classes: not a class count"
    out.add("data-classes", "error", data_path, line,
            f"classes={_cut(value)}{read}: {what}. `detector train` ignores it (it trains with "
            f"the classes of the cfg's last head, detector.c:train_detector), but calc_anchors "
            f"allocates a counter per class with it and detector demo draws with it "
            f"(detector.c); the labels are checked against the cfg's count, else the .names'",
            fix=f"classes={names_count or 'N'}, the number of lines of the .names file")
    return None


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
                f"{key}={_cut(value)}{default} cannot be read from the folder darknet runs in: "
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
                    f"{_q(os.fsdecode(raw_line))} keeps a \\r: darknet reads it as part of the "
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
        chunks = [os.read(fd, st.st_size + 1)]  # its size, not 16 MiB for a short list
        while chunks[-1]:
            chunks.append(os.read(fd, 1 << 20))
        return b"".join(chunks)
    finally:
        os.close(fd)


class _Scan:
    """The images of the lists and their labels."""

    def __init__(self, root: str, root_fd: int, classes: int | None, head: CfgLayer | None,
                 net_w: int, net_h: int, max_boxes: int | None, images: bool,
                 out: _Findings) -> None:
        self.root, self.fd, self.classes, self.head = root, root_fd, classes, head
        self.net_w, self.net_h, self.max_boxes = net_w, net_h, max_boxes
        # fill_truth_detection's 1.F / net_w and 1.F / net_h (0 without a cfg)
        self.lowest = (_f32(1.0 / net_w) if net_w > 0 else 0.0,
                       _f32(1.0 / net_h) if net_h > 0 else 0.0)
        self.read_images = images
        self.out = out
        self.labels = 0
        self.empty = 0
        self.loadable = 0  # entries of the last list run() checked that darknet can load
        self.per_class: Counter[int] = Counter()  # never a slot per declared class
        self.images: list[str] = []
        self.counting = True  # labels, boxes and empty images go to the summary

    def run(self, list_path: str, lines: Sequence[tuple[bytes, int]], report: Reporter,
            done: int) -> dict[object, tuple[int, str]]:
        """Checks every entry; returns {image identity: (line, name)}."""
        seen: dict[object, tuple[int, str]] = {}
        out, fd = self.out, self.fd
        self.loadable = 0
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
                self.loadable += 1
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
        try:  # stat first: a FIFO or a device is not opened (a FIFO's open can block)
            st = os.stat(label, dir_fd=self.fd)
        except (OSError, ValueError) as err:
            self._missing_label(list_path, number, name, label, err)
            return
        if stat.S_ISDIR(st.st_mode):
            out.add("label-unreadable", "error", label, None,
                    "a folder: darknet's fopen succeeds, fscanf reads no box "
                    "(data.c:read_boxes): the image trains with no box",
                    fix="a label file, one line `class x y w h` per box")
            return
        if not stat.S_ISREG(st.st_mode):
            out.add("label-unreadable", "error", label, None,
                    f"a {_file_type(st.st_mode)}, not a file (not opened here): darknet opens "
                    f"it with fopen and reads it with fscanf (data.c:read_boxes); on a FIFO "
                    f"fopen waits for a writer and training hangs, a device's bytes are read "
                    f"as labels", fix="a label file, one line `class x y w h` per box")
            return
        if st.st_size > _MAX_LABEL_BYTES:
            out.add("label-unreadable", "error", label, None,
                    f"{st.st_size} bytes: not a label file", fix="check the file")
            return
        try:
            fd = os.open(label, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0),
                         dir_fd=self.fd)
        except (OSError, ValueError) as err:
            self._missing_label(list_path, number, name, label, err)
            return
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_LABEL_BYTES:
                out.add("label-unreadable", "error", label, None,
                        "replaced while it was checked", fix="check it again")
                return
            data = os.read(fd, st.st_size + 1) if st.st_size else b""
            while st.st_size < len(data) <= _MAX_LABEL_BYTES:  # it grew since the fstat
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
        self._check_boxes(label, data[:_MAX_LABEL_BYTES])

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
        """Every box of a label file, streamed (none is kept): the common
        box (an id in range, inside the image, at least a pixel) costs a few
        comparisons; the others go through :meth:`_check_box`."""
        good = _GOOD_FILE.fullmatch(data) is not None
        scan = None if good else _Boxes(data)
        boxes = _good_boxes(data) if scan is None else scan
        found = _LabelFindings(self.out, label, data, good)
        top = self.classes if self.classes is not None else 1 << 31
        lw, lh = self.lowest
        per_class, counting = self.per_class, self.counting
        n = kept = 0
        for b in boxes:
            n += 1
            ident, x, y, w, h, _, written = b
            if (written is None and 0 <= ident < top and 0 < x <= 1 and 0 < y <= 1
                    and 0 < w <= 1 and 0 < h <= 1 and w >= lw and h >= lh
                    and x - w / 2 >= 0 and x + w / 2 <= 1 and y - h / 2 >= 0
                    and y + h / 2 <= 1) or self._check_box(b, found):
                kept += 1  # the common box above, or one _check_box says darknet keeps
                if counting:
                    per_class[ident] += 1
        if self.max_boxes is not None and n > self.max_boxes:
            found.add("too-many-boxes", "warning", None, lambda: (
                f"{n} boxes, more than the last head's max={self.max_boxes}: darknet keeps "
                f"{self.max_boxes} drawn at random each time (data.c:fill_truth_detection)"),
                fix=f"set max={n} or more in the cfg's [yolo] sections", capped=False)
        if scan is not None:
            self._bad_lines(found, data, n, scan.stop)
        if not kept:
            self.empty += counting

    def _check_box(self, b: _Box, found: _LabelFindings) -> bool:
        """The findings of a box the common case does not cover; whether
        darknet keeps it."""
        classes = self.classes
        outside = b.id < 0 or (classes is not None and b.id >= classes)
        if not outside:
            what = f"it trains the box as class {b.id}"
        elif b.id >= 0:
            what = (f"class id {b.id} is outside [0, {classes}): darknet prints \"Wrong "
                    f"annotation: class_id\" and drops the box (data.c:fill_truth_detection)")
        else:
            what = f"class id {b.id} is negative: {self.negative_id}"
        fix = (f"class ids are 0 to {classes - 1} (the line of the .names file minus 1)"
               if classes else "class ids are 0 or more (the line of the .names file minus 1)")
        if b.written is not None:
            found.add("class-id", "error", b.line, lambda: (
                f"class id {b.written} does not fit a C int: darknet's fscanf (%d) reads it as "
                f"{b.id}" + (": " if outside else ", and ") + what), fix=fix)
            if outside:
                return False
        elif outside:
            found.add("class-id", "error", b.line, lambda: what, fix=fix)
            return False
        lowest_w, lowest_h = self.lowest
        fate = _fate(b, lowest_w, lowest_h)
        bad = [f"{k}={v:g}" for k, v in (("x", b.x), ("y", b.y), ("w", b.w), ("h", b.h))
               if not 0 < v <= 1]
        if b.w <= 0 or b.h <= 0 or (math.isfinite(b.w) and math.isfinite(b.h)
                                    and (b.w == 0 or b.h == 0)):
            found.add("box-size", "error", b.line, lambda: (
                f"a box of size {b.w:g} x {b.h:g}: darknet drops it silently (smaller than a "
                f"pixel, data.c:fill_truth_detection)"),
                fix="delete the line, or give the box its width and height")
        elif bad:
            found.add("box-coords", "error", b.line, lambda: (
                f"{', '.join(bad)} outside (0, 1] (x y w h are fractions of the image's width "
                f"and height): {fate}"),
                fix="x = center / image width, y = center / image height, w and h the box's "
                    "size over the image's; all in (0, 1]")
        elif fate.startswith("dropped silently"):
            found.add("box-tiny", "warning", b.line, lambda: (
                f"a box of {b.w * self.net_w:.2f} x {b.h * self.net_h:.2f} pixels at the "
                f"network's {self.net_w} x {self.net_h}: {fate}"),
                fix="delete it, or train at a larger width/height")
        return fate.startswith(("kept", "clipped", "NaN"))

    @property
    def negative_id(self) -> str:
        """What darknet does with a negative class id, by the cfg's heads."""
        keeps = "data.c:fill_truth_detection keeps the box (it checks only id >= classes)"
        head = self.head
        if head is None:
            return (f"{keeps}; a [yolo] head then skips it (yolo_layer.c: class_id < 0), a "
                    f"[Gaussian_yolo] or [region] head uses the id unchecked as an index in "
                    f"its loss (memory before its class array)")
        if isinstance(head.attrs, (GaussianYoloAttrs, RegionAttrs)):
            source = "gaussian_yolo_layer.c" if isinstance(head.attrs, GaussianYoloAttrs) \
                else "region_layer.c"
            return (f"{keeps}, and the [{head.type}] head uses the id unchecked as an index in "
                    f"its loss ({source}: it checks only class_id >= classes): memory before "
                    f"its class array")
        if isinstance(head.attrs, YoloAttrs):
            return (f"{keeps}, and the [yolo] head skips it (yolo_layer.c: class_id < 0): the "
                    f"box is not trained on, and takes one of the head's max= slots")
        return f"{keeps} and gives it to the [{head.type}] head"

    def _bad_lines(self, found: _LabelFindings, data: bytes, boxes: int, stop: int | None
                   ) -> None:
        """The lines of a label file that are not five plain numbers: the
        first that shifts or stops fscanf's reading, and the first that reads
        as five numbers though one is not plain (nan, inf, hexadecimal, an
        exponent without digits)."""
        good = broken = odd = 0
        first_broken: tuple[int, bytes] | None = None
        first_odd: tuple[int, bytes, int, bytes] | None = None
        number, pos, size = 0, 0, len(data)
        while pos <= size:
            end = data.find(b"\n", pos)
            end = size if end < 0 else end
            line, pos = data[pos:end], end + 1
            number += 1
            tokens = line.split()
            if not tokens:
                continue
            if len(tokens) == 5 and _GOOD_INT.fullmatch(tokens[0]):
                plain = [_GOOD_NUM.fullmatch(t) is not None for t in tokens[1:]]
                if all(plain):
                    good += 1
                    continue
                if all(_reads_whole(t) for t in tokens[1:]):
                    odd += 1
                    if first_odd is None:
                        k = plain.index(False)
                        first_odd = (number, line, k, tokens[k + 1])
                    continue
            broken += 1
            if first_broken is None:
                first_broken = (number, line)
        if first_broken is not None:
            number, line = first_broken
            more = f" ({broken - 1} more such line(s) in the file)" if broken > 1 else ""
            if stop is not None and stop <= number:
                what = (f"darknet's fscanf stops at line {stop}: it keeps the {boxes} box(es) "
                        f"before and ignores the rest of the file")
            else:
                what = (f"darknet reads the numbers five at a time across lines (fscanf), so "
                        f"it reads {boxes} box(es) where the file has {good + odd} line(s) of "
                        f"five numbers, the ones after this line shifted")
            found.add("label-format", "error", number, lambda: (
                f"{_q(os.fsdecode(line.strip()))} is not five numbers `class x y w h`{more}: "
                f"{what} (data.c:read_boxes)"),
                fix="one line per box: an integer class id, then four numbers", capped=False)
        if first_odd is not None and (stop is None or first_odd[0] < stop):
            number, line, k, token = first_odd
            value = _c_float(token)
            name = "xywh"[k]
            if _DANGLING_EXPONENT.fullmatch(token):
                severity = "error"
                what = (f"a number whose exponent has no digits: glibc's fscanf reads it as "
                        f"{value:g} (glibc before the fix of its bug 12701), later glibc "
                        f"stops reading the file there")
            else:
                severity = "warning"
                what = (f"not a plain decimal number: darknet's fscanf reads it as {value:g}"
                        + ("" if math.isfinite(value) else
                           " (box-coords says what darknet does with it)"))
            more = f" ({odd - 1} more such line(s) in the file)" if odd > 1 else ""
            found.add("label-format", severity, number, lambda: (
                f"{_q(os.fsdecode(line.strip()))}: {name}={_q(os.fsdecode(token))} is {what}"
                f"{more} (data.c:read_boxes)"),
                fix="write the numbers as plain decimals, such as 0.5 (other tools read no "
                    "other form)", capped=False)


class _LabelFindings:
    """The findings of one label file: those of its first boxes, up to
    :data:`_MAX_FINDINGS_PER_FILE`, kept (their messages made), the rest only
    counted, and those of the file as a whole; a box's line found when a
    finding needs it."""

    __slots__ = ("data", "good", "label", "lines", "out", "room")

    def __init__(self, out: _Findings, label: str, data: bytes, good: bool) -> None:
        self.out, self.label, self.data, self.good = out, label, data, good
        self.lines: list[int] | None = None
        self.room = _MAX_FINDINGS_PER_FILE

    def add(self, kind: str, severity: str, where: int | None, message: Callable[[], str],
            fix: str, *, capped: bool = True) -> None:
        """``where``: a line, a box's index in a well-formed file, or None;
        ``capped``: a finding of one box (one of the file as a whole, at
        most one of each kind, is kept past the cap)."""
        if not self.out.count(kind, severity, keep=self.room > 0 or not capped):
            return
        self.room -= capped
        line = where
        if where is not None and self.good:
            if self.lines is None:
                self.lines = _line_numbers(self.data)
            line = self.lines[where]
        self.out.items.append(DataFinding(kind, severity, message(), fix,  # type: ignore[arg-type]
                                          path=self.label, line=line))


def _reads_whole(token: bytes) -> bool:
    """fscanf's ``%f`` reads all of ``token`` (a token without white space)."""
    m = _SCAN_FLOAT.match(token)
    return m is not None and m.end() == len(token)


def _file_type(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


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
    said = _cut(value)  # the value, in the messages
    base = _basecfg(config.path) if config is not None else "CFG"
    first = (f"darknet trains, then fails at its first save, {said.rstrip('/')}/{base}_last."
             f"weights after `savelast` iterations (100 by default) or {base}_final.weights at "
             f"the end (detector.c:train_detector, save_weights: \"Couldn't open file\")")
    try:
        st = os.stat(path)
    except (OSError, ValueError) as err:
        out.add("backup-missing", "error", data_path, line,
                f"backup={said}{default} does not exist from {root} "
                f"({getattr(err, 'strerror', None) or err}){_path_hint(raw_lines.get('backup'), value)}"
                f": {first}", fix=f"mkdir -p {said}" + ("" if line is not None else
                                                      ", or add backup=backup/"))
        return
    if not stat.S_ISDIR(st.st_mode):
        out.add("backup-missing", "error", data_path, line,
                f"backup={said}{default} is not a folder: {first}",
                fix="give backup= a folder")
        return
    if not os.access(path, os.W_OK | os.X_OK):
        out.add("backup-unwritable", "error", data_path, line,
                f"backup={said}{default}: no permission to write there: {first}",
                fix=f"chmod u+wx {said}, or another folder")
    if config is not None:
        iterations = _option_int(_net_options(config).get("max_batches", ("0", 0))[0], 0)
        longest = max(len("_final.weights"), len(f"_{iterations}.weights"))
        size = len(os.fsencode(value)) + 1 + len(os.fsencode(base)) + longest
        if size >= _BACKUP_BUFF:
            out.add("backup-path-too-long", "error", data_path, line,
                    f"{said}/{base}_final.weights is {size} bytes: darknet writes the names "
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
                f"steps={_cut(text)} do not increase: darknet stops at the first step above the "
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

