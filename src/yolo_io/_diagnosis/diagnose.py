"""Why a ``.weights`` file does not load with a ``.cfg``, and which lines to change.

:func:`diagnose` returns a :class:`Diagnosis`: a list of :class:`Finding`
objects, the most useful first. Every fix it proposes for the cfg (a class
count, a header) is checked before it is proposed: the cfg is parsed again
with the changed lines by the same core that loads it, and must then need
exactly the bytes the file has.
"""

from __future__ import annotations

import os
import re
import shlex
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, field
from typing import Any, Literal

from .. import _core
from .._base.errors import CfgError, CfgWarning, WeightsSizeError, YoloIOError
from .._base.paths import PathArg, fs_path
from .._base.records import Record, dataclass, record_params
from .._model.attrs import DetectionAttrs, RegionAttrs, YoloAttrs
from .._model.config import CfgLayer, Config, atoi, cfg_text, core_config, parse
from .._model.network import explain_size_errors_with, file_kinds
from .published import Published, published_with_size
from .text_files import read_data_file, read_names, read_text_file

__all__ = ["CfgEdit", "Diagnosis", "Finding", "LayerRef", "diagnose"]

Severity = Literal["error", "warning", "info"]

_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}

# Kinds whose finding is a fix for a size mismatch, best first.
_SUGGESTION_KINDS = ("class-count", "anchors-per-head", "header-seen-32bit",
                     "header-seen-64bit", "partial-file", "published-model")
# Kinds that mean the weights file does not fit the cfg.
_FIT_KINDS = frozenset({"empty-file", "text-file", "archive", "too-short", "bad-header",
                        *_SUGGESTION_KINDS, "size-short", "size-long"})
# The order of findings of the same severity.
_ORDER = ("swapped-arguments", "cfg-error", "head-filters", "empty-file", "text-file", "archive", "too-short",
          "bad-header", *_SUGGESTION_KINDS, "size-short", "size-long")

# A file type the core recognises -> (finding kind, severity).
_NOT_WEIGHTS = {
    "empty": "empty-file", "zip": "archive", "hdf5": "archive", "gzip": "archive",
    "pickle": "archive", "git-lfs": "text-file", "html": "text-file", "cfg": "text-file",
    "text": "text-file", "too-short": "too-short", "bad-header": "bad-header",
}


@dataclass(frozen=True)
class LayerRef(Record):
    """The layer a finding concerns."""

    index: int
    """Darknet's 0-based layer index."""
    type: str
    """Its canonical type, e.g. ``"yolo"``."""
    line: int
    """The cfg line of its ``[section]``."""


@dataclass(frozen=True)
class CfgEdit(Record):
    """One line of the cfg to change (``old`` is None: a line to add after
    ``line``, for an option the section does not have)."""

    path: str
    line: int
    layer: int
    old: str | None
    new: str

    def __str__(self) -> str:
        if self.old is None:
            return f"{self.path}:{self.line}: add {self.new!r} after this line (layer {self.layer})"
        return f"{self.path}:{self.line}: {self.old}  ->  {self.new}   (layer {self.layer})"


@dataclass(frozen=True)
class Finding(Record):
    """One thing :func:`diagnose` found.

    ``kind`` is one of: ``"swapped-arguments"``, ``"cfg-error"``,
    ``"empty-file"``, ``"text-file"`` (HTML, a Git LFS pointer, a cfg),
    ``"archive"`` (ZIP/``.pt``, HDF5/``.h5``, gzip, pickle), ``"too-short"``,
    ``"bad-header"``, ``"size-short"``, ``"size-long"``, ``"partial-file"``,
    ``"class-count"``, ``"anchors-per-head"``, ``"header-seen-32bit"``,
    ``"header-seen-64bit"``, ``"published-model"``, ``"heads-disagree"``,
    ``"head-filters"`` (the cfg does not parse: convolutions whose
    ``filters=`` do not fit their heads' ``classes=``/``mask=``),
    ``"data-classes"``, ``"names-count"``, ``"data-names"``, ``"names-missing"``,
    ``"cfg-warning"``;
    and from :func:`yolo_io.doctor` (the values): ``"non-finite"``,
    ``"bad-variance"``, ``"zero-variance"``, ``"dead-filters"``,
    ``"extreme-bn-scale"``, ``"all-zero"``.
    """

    kind: str
    severity: Severity
    message: str
    fix: str | None = None
    """What to do, in words (the ``edits`` spell it out line by line)."""
    layer: LayerRef | None = None
    edits: tuple[CfgEdit, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def __str__(self) -> str:
        where = ""
        if self.layer is not None and not self.message.startswith(f"layer {self.layer.index} ("):
            where = f" (layer {self.layer.index}, [{self.layer.type}] at line {self.layer.line})"
        text = f"{self.severity} [{self.kind}]{where}: {self.message}"
        if self.fix:
            text += f"\n  fix: {self.fix}"
        for edit in self.edits:
            text += f"\n    {edit}"
        return text


@dataclass(frozen=True)
class Diagnosis(Record):
    """What :func:`diagnose` found, most useful first; ``ok`` when nothing is
    an error (warnings and notes may remain)."""

    weights: str
    cfg: str
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """No finding is an error: the pair loads and is consistent."""
        return not any(f.severity == "error" for f in self.findings)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    def suggestion(self) -> Finding | None:
        """The best fix for a size mismatch, if one was found."""
        for kind in _SUGGESTION_KINDS:
            for f in self.findings:
                if f.kind == kind:
                    return f
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``weights``, ``cfg``, ``ok`` and ``findings``."""
        return {"weights": self.weights, "cfg": self.cfg, "ok": self.ok,
                "findings": [f.to_dict() for f in self.findings]}

    def __str__(self) -> str:
        errors = self.errors
        if not errors:
            head = f"{self.weights} and {self.cfg} are consistent"
        elif any(f.kind in _FIT_KINDS for f in errors):
            head = f"{self.weights} does not fit {self.cfg}"
        else:
            head = (f"{self.weights} and {self.cfg}: {len(errors)} "
                    f"problem{'s' * (len(errors) > 1)}")
        return "\n".join([head, *(str(f) for f in self.findings)])


def diagnose(
    weights: PathArg,
    cfg: PathArg | Config,
    *,
    data: PathArg | None = None,
    names: PathArg | None = None,
    partial: bool = False,
) -> Diagnosis:
    """Say why ``weights`` and ``cfg`` do not load together, and what to change.

    Reads the cfg, the weights file's first bytes and its size (never its
    data). Recognises: a file that is not a weights file (empty, an HTML page,
    a Git LFS pointer, a cfg, a ``.pt``/``.h5``/zip archive, a pickle); swapped
    arguments; a file too short or too long, with the first layer that crosses
    its end; a partial (backbone) file; weights trained for another class count
    (solved exactly at every ``[yolo]``/``[Gaussian_yolo]``/``[region]`` head,
    with the ``filters=`` and ``classes=`` lines to change) or another number of
    anchors per head; a 16-byte header where the version says 20 bytes, or the
    reverse; the size of a published model's file; and, given darknet's
    ``.data`` file or a ``.names`` file, a class count that disagrees with the
    heads.

    Args:
        weights: the ``.weights`` file (every path: str, bytes or
            os.PathLike, a file name in any encoding).
        cfg: the ``.cfg`` file, or its text, or a Config from :func:`parse_cfg`
            (then the class-count fixes need the file it was read from). A
            str is cfg text only when it contains a newline and is not the
            name of an existing file, as for :func:`parse_cfg`.
        data: darknet's ``.data`` file (``classes=``, ``names=``), optional.
        names: a ``.names`` file (one class per line), optional; by default the
            one the ``.data`` file names, if it exists.
        partial: accept a file that ends exactly on a layer boundary (a
            backbone from ``darknet partial``), as :func:`load` does; without
            it such a file is an error whose fix says so.

    Returns:
        The Diagnosis; ``ok`` is True when the pair loads and agrees.

    Raises:
        FileNotFoundError, PermissionError, IsADirectoryError: a file cannot be read.
    """
    weights_path = fs_path(weights, "weights")
    source = cfg_text(cfg)
    cfg_path = (cfg.path if isinstance(cfg, Config) else "<string>" if source
                else fs_path(cfg, "cfg"))
    data = None if data is None else fs_path(data, "data")
    names = None if names is None else fs_path(names, "names")
    findings: list[Finding] = []
    # Only regular files are sniffed: a cfg may also come from a pipe (<(...)).
    given_file = not isinstance(cfg, Config) and source is None
    kinds = (given_file and file_kinds(weights_path, cfg_path)) or ("", "")
    if kinds == ("cfg", "weights"):
        findings.append(Finding(
            "swapped-arguments", "error",
            f"the two files are the other way round: {weights_path} is a .cfg and {cfg_path} "
            f"a Darknet .weights file (this diagnosis reads them swapped)",
            fix=f"pass the weights first to load() (load({cfg_path!r}, {weights_path!r})) and "
                f"the cfg first to yolo-io (yolo-io check {shlex.quote(weights_path)} "
                f"{shlex.quote(cfg_path)})"))
        weights_path, cfg_path = cfg_path, weights_path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CfgWarning)  # reported as findings below
            config = (cfg if isinstance(cfg, Config)
                      else parse(cfg if source else cfg_path, stacklevel=2))
    except CfgError as err:
        heads = None if kinds[1] == "weights" else _head_inputs(cfg_path, source, err,
                                                                   weights_path)
        fix = ("pass the .cfg file as the cfg" if kinds[1] == "weights"
               else "fix the cfg line the message names")
        findings.append(heads or Finding("cfg-error", "error", str(err), fix=fix))
        return _done(weights_path, cfg_path, findings)
    findings.extend(Finding("cfg-warning", "info", w) for w in config.warnings)
    findings.extend(_head_findings(config))
    weight_findings = _weights_findings(weights_path, config, partial, source)
    if data is not None or names is not None:
        findings.extend(_class_file_findings(config, data, names, weight_findings))
    findings.extend(weight_findings)
    return _done(weights_path, cfg_path, findings)


def _done(weights: str, cfg: str, findings: list[Finding]) -> Diagnosis:
    order = {k: i for i, k in enumerate(_ORDER)}
    findings.sort(key=lambda f: (_SEVERITY_RANK[f.severity], order.get(f.kind, len(order))))
    return Diagnosis(weights, cfg, tuple(findings))


def _ref(layer: CfgLayer) -> LayerRef:
    return LayerRef(layer.index, layer.type, layer.line)


# -- the weights file ---------------------------------------------------------

def _weights_findings(path: str, config: Config, partial: bool,
                      source: bytes | None) -> list[Finding]:
    problem = _core.weights_problem(path)
    if problem is not None:
        kind, why = problem
        return [Finding(_NOT_WEIGHTS.get(kind, "bad-header"), "error",
                        f"{path} is not a Darknet .weights file: {why}",
                        fix=_not_weights_fix(kind))]
    try:
        weights = _core.Weights(core_config(config), path, partial)
    except WeightsSizeError as err:
        return _size_findings(path, config, err, source)
    n = weights.covered_layers
    if n < len(config):
        return [Finding("partial-file", "info",
                        f"{path} is a partial file with the first {n} of {len(config)} layers "
                        f"(loaded with partial=True)", layer=_ref(config[n]))]
    return []


def _not_weights_fix(kind: str) -> str:
    return {
        "empty": "download or copy the file again",
        "git-lfs": "run `git lfs pull` in the repository the file came from",
        "html": "download the file again from the release page's direct link; the saved page "
                "may be a login, error or redirect page",
        "cfg": "pass the .weights file, not a cfg",
        "zip": "convert a PyTorch or Keras checkpoint with its own tools; yolo_io reads "
               "Darknet .weights",
        "hdf5": "this is a Keras model; yolo_io reads Darknet .weights",
        "pickle": "this is a PyTorch checkpoint; yolo_io reads Darknet .weights",
        "gzip": "decompress it first (gunzip)",
    }.get(kind, "check where the file came from; a Darknet .weights file starts with a "
                "12-byte version and a seen counter")


def _size_findings(path: str, config: Config, err: WeightsSizeError,
                   source: bytes | None) -> list[Finding]:
    major, minor, revision, _seen, header_size, _transpose, actual = _core.read_header(path)
    expected = err.expected
    out: list[Finding] = []
    message = str(err)
    if err.partial_layers is not None:
        n = err.partial_layers
        official = [p.file for p in published_with_size(actual) if p.layers == n]
        name = f" (the size of the official {' or '.join(official)})" if official else ""
        out.append(Finding(
            "partial-file", "error",
            f"{path} ends exactly after layer {n - 1}: a partial file with the first {n} layers"
            f"{name}, a backbone written by `darknet partial` to train from",
            fix="load it with partial=True (yolo_io.load(..., partial=True)); train from it "
                "with darknet, or pass the complete weights",
            layer=_ref(config[n]) if n < len(config) else None))
    kind = "size-short" if actual < expected else "size-long"
    layer = config[err.layer] if err.layer is not None else None
    out.append(Finding(kind, "error", message, layer=_ref(layer) if layer else None))
    out.extend(suggest(config, path, actual=actual, header_size=header_size,
                       version=(major, minor, revision), partial_layers=err.partial_layers,
                       source=source))
    return out


def suggest(config: Config, path: str, *, actual: int, header_size: int,
            version: tuple[int, int, int], partial_layers: int | None = None,
            source: bytes | None = None) -> list[Finding]:
    """Fixes for a file of ``actual`` bytes that does not fit ``config``: a
    class count or anchors per head, a header width, a published model's size
    (other than the backbone of ``partial_layers`` layers of this cfg, which
    the partial-file finding names). ``source``: the cfg text, when the
    config was not read from a file."""
    out: list[Finding] = []
    data_bytes = actual - header_size
    other = 16 if header_size == 20 else 20
    out.extend(_class_solutions(config, data_bytes, source))
    if not out and actual - other == 4 * config.param_count:
        ver = ".".join(map(str, version))
        if header_size == 20:
            out.append(Finding(
                "header-seen-32bit", "error",
                f"the header says version {ver}, which darknet reads as a 20-byte header with a "
                f"64-bit `seen`, but the file is exactly 4 bytes short: it was written with a "
                f"32-bit `seen` (16-byte header), a known bug of some PyTorch exporters",
                fix="rewrite the header with an 8-byte `seen`, or set its version to 0.1 (the "
                    "int32 major at bytes 0..3 to 0 and minor at bytes 4..7 to 1), which "
                    "darknet reads as a 16-byte header"))
        else:
            out.append(Finding(
                "header-seen-64bit", "error",
                f"the header says version {ver}, which darknet reads as a 16-byte header with a "
                f"32-bit `seen`, but the file is exactly 4 bytes long: it was written with a "
                f"64-bit `seen` (20-byte header)",
                fix="set the header's version to 0.2 (the int32 major at bytes 0..3 to 0 and "
                    "minor at bytes 4..7 to 2), which darknet reads as a 20-byte header"))
    for p in published_with_size(actual):
        if p.layers is None or p.layers != partial_layers:
            out.append(_published_finding(path, p))
    return out


def _published_finding(path: str, p: Published) -> Finding:
    what = f"a partial file of its first {p.layers} layers" if p.layers else "the weights"
    fix = (f"use it with {p.cfg}" + (" and partial=True" if p.layers else "")
           + ", or get the weights trained for your cfg")
    return Finding("published-model", "error",
                   f"{path} has exactly the size of the official {p.file} ({p.model}; "
                   f"{p.size} bytes): is it {what} for {p.cfg}? ({p.source})", fix=fix)


# -- heads and class counts ---------------------------------------------------

@dataclass(frozen=True)
class _Head(Record):
    """A detection head and the layer that produces its input, whose size
    (``key=``: a convolution's ``filters=``, a connected layer's ``output=``)
    is ``mult * (classes + per)``."""

    head: CfgLayer
    producer: CfgLayer
    key: str
    classes: int
    mult: int  # anchors of the head; side * side for [detection]
    per: int  # values per anchor beyond the classes: 5 (yolo), 9 (Gaussian), coords + 1
    attrs: YoloAttrs | RegionAttrs | DetectionAttrs


def _heads(config: Config) -> list[_Head] | None:
    """Every detection head with the layer that feeds it, or None when a head
    is not fed by a convolution with a ``filters=`` line (a connected layer
    with an ``output=`` line for ``[detection]``). The relation between that
    size and the classes is read off the cfg, which the core has checked."""
    heads = []
    for layer in config:
        attrs = layer.attrs
        if not isinstance(attrs, (YoloAttrs, RegionAttrs, DetectionAttrs)):
            continue
        prev = config[layer.index - 1] if layer.index > 0 else None
        dense = isinstance(attrs, DetectionAttrs)
        key = "output" if dense else "filters"
        mult = attrs.side * attrs.side if isinstance(attrs, DetectionAttrs) else attrs.num
        if (prev is None or prev.fusion != ("dense" if dense else "conv")
                or key not in prev.options or mult <= 0):
            return None
        size = prev.output_shape[0]
        heads.append(_Head(layer, prev, key, attrs.classes, mult,
                           size // mult - attrs.classes, attrs))
    return heads


def _head_findings(config: Config) -> list[Finding]:
    heads = _heads(config) or []
    counts = sorted({h.classes for h in heads})
    if len(counts) < 2:
        return []
    listing = ", ".join(f"layer {h.head.index} (line {h.head.line}): classes={h.classes}"
                        for h in heads)
    return [Finding("heads-disagree", "warning",
                    f"the heads of {config.path} disagree on the class count: {listing}",
                    fix="give every head the same classes= and its convolution the matching "
                        "filters=", layer=_ref(heads[0].head))]


class _Text:
    """The cfg's lines, to parse again with some of them changed: ``source``,
    or else the file the config was read from."""

    def __init__(self, config: Config | str, source: bytes | None = None) -> None:
        self.path = config.path if isinstance(config, Config) else config
        if source is None:
            source = read_text_file(self.path)
        self.lines = source.split(b"\n")

    def old(self, line: int) -> str:
        return self.lines[line - 1].decode("utf-8", "replace").rstrip("\r").strip()

    def size_with(self, edits: Sequence[CfgEdit], header_size: int) -> int | None:
        try:
            core = _core.parse_cfg_text(self.text_with(edits))
        except CfgError:
            return None
        return int(core.expected_bytes(header_size, -1))

    def text_with(self, edits: Sequence[CfgEdit]) -> bytes:
        """The cfg's bytes with ``edits`` made."""
        lines = list(self.lines)
        inserts: dict[int, list[bytes]] = {}
        for e in edits:
            if e.old is None:
                inserts.setdefault(e.line, []).append(e.new.encode())
            else:
                lines[e.line - 1] = e.new.encode()
        out: list[bytes] = []
        for i, text in enumerate(lines, start=1):
            out.append(text)
            out.extend(inserts.get(i, ()))
        return b"\n".join(out)


# The core's message for a head whose input does not hold what it decodes
# (heads.cpp, check_head_input): the convolution before it and its filters=.
_HEAD_INPUT = re.compile(r"its input, layer (?P<layer>\d+) \(convolutional, line "
                         r"(?P<line>\d+)\), outputs \S+: set filters=(?P<filters>\d+) there")


def _head_inputs(path: str, source: bytes | None, err: CfgError,
                 weights: str) -> Finding | None:
    """For a cfg refused because a head's convolution has the wrong
    ``filters=`` (the classes= changed, the filters= left): every such
    convolution at once, with its ``filters=`` line, checked by parsing the cfg
    again with them all changed; and the class count the weights fit."""
    try:
        text = _Text(path, source)
    except OSError:
        return None
    edits: list[CfgEdit] = []
    error: CfgError | None = err
    for _ in range(len(text.lines)):  # one head per round
        match = _HEAD_INPUT.search(str(error)) if error is not None else None
        if error is None or match is None or error.line <= 1:
            break
        # The layers before the head's section parse: the convolution is the last.
        lines = text.text_with(edits).split(b"\n")[:error.line - 1]
        try:
            before = Config(_core.parse_cfg_text(b"\n".join(lines), path))
        except CfgError:
            return None
        conv = before[int(match["layer"])] if int(match["layer"]) < len(before) else None
        if conv is None or conv.line != int(match["line"]):
            return None
        edits.append(_edit(text, conv, "filters", int(match["filters"])))
        try:
            fixed = _core.parse_cfg_text(text.text_with(edits), path)
        except CfgError as again:
            error = again
            continue
        return _head_input_finding(path, text, edits, Config(fixed), weights)
    return None


def _head_input_finding(path: str, text: _Text, edits: list[CfgEdit], config: Config,
                        weights: str) -> Finding:
    heads = [h for h in _heads(config) or [] if any(e.layer == h.producer.index for e in edits)]
    sections = "[" + "]/[".join(sorted({h.head.section.strip("[]") for h in heads})) + "]"
    classes = "/".join(map(str, sorted({h.classes for h in heads})))
    listing = "; ".join(f"layer {e.layer} (line {e.line}) has {e.old or 'no filters='}, its "
                        f"head needs {e.new}" for e in edits)
    message = (f"{path}: the filters= of the convolution before {len(edits)} "
               f"{sections} head{'s' * (len(edits) > 1)} do not fit the heads' classes={classes} "
               f"(filters = anchors in mask x (classes + values per box)): {listing}")
    fit = _weights_classes(text, edits, config, weights)
    fix = f"change these {len(edits)} filters= lines for classes={classes}"
    if fit is not None:
        k, back = fit
        if k is None:
            message += f"; {weights} fits the cfg with these lines changed"
        else:
            message += (f"; {weights} fits the cfg as it is with classes={k} (what the "
                        f"filters= say): it was trained for {k} class{'es' * (k != 1)}")
            fix += (f" (then train: these weights fit only the layers before layer "
                    f"{min(e.layer for e in edits)}), or, to use these weights, keep the "
                    f"filters= and set classes={k} back at "
                    + ", ".join(f"{path}:{e.line}" for e in back))
    return Finding("head-filters", "error", message, fix=fix, edits=tuple(edits),
                   layer=_ref(heads[0].head) if heads else None)


def _weights_classes(text: _Text, edits: list[CfgEdit], config: Config, weights: str
                     ) -> tuple[int | None, list[CfgEdit]] | None:
    """(None, []) when ``weights`` fits the cfg with ``edits`` made; (k, the
    ``classes=`` lines to set) when it fits with classes=k at every head;
    None when neither (or it cannot be read)."""
    try:
        _, _, _, _, header_size, _, actual = _core.read_header(weights)
    except (OSError, YoloIOError):
        return None
    fixed = _Text(text.path, text.text_with(edits))
    if fixed.size_with((), header_size) == actual:
        return None, []
    heads = _heads(config)
    if not heads:
        return None

    def size_for_classes(k: int) -> int | None:
        return fixed.size_with(_class_edits(fixed, heads, k), 20)

    k = _solve_linear(size_for_classes, actual - header_size + 20)
    if k is None:
        return None
    back = [e for e in _changed(_class_edits(fixed, heads, k)) if e.new.startswith("classes=")]
    return k, back


def _edit(text: _Text, layer: CfgLayer, key: str, value: int | str) -> CfgEdit:
    try:
        line = layer.option_line(key)
    except KeyError:
        return CfgEdit(text.path, layer.line, layer.index, None, f"{key}={value}")
    return CfgEdit(text.path, line, layer.index, text.old(line), f"{key}={value}")


def _changed(edits: Iterable[CfgEdit]) -> tuple[CfgEdit, ...]:
    """The edits that change something."""
    return tuple(e for e in edits if e.old is None or re.sub(r"\s", "", e.old) != e.new)


def _class_edits(text: _Text, heads: Iterable[_Head], classes: int) -> list[CfgEdit]:
    edits = []
    for h in heads:
        edits.append(_edit(text, h.producer, h.key, (classes + h.per) * h.mult))
        edits.append(_edit(text, h.head, "classes", classes))
    return edits


def _solve_linear(f: Callable[[int], int | None], target: int) -> int | None:
    """The integer x >= 1 with f(x) == target for an f linear in x, or None."""
    a, b = f(1), f(2)
    if a is None or b is None or b == a:
        return None
    x, rem = divmod(target - a, b - a)
    if rem or x < 0:
        return None
    x += 1
    return x if f(x) == target else None


def _class_solutions(config: Config, data_bytes: int, source: bytes | None) -> list[Finding]:
    heads = _heads(config)
    if not heads:
        return []
    try:
        text = _Text(config, source)
    except OSError:
        return []  # a Config parsed from text: its lines are not at hand
    target = data_bytes + 20

    def size_for_classes(k: int) -> int | None:
        return text.size_with(_class_edits(text, heads, k), 20)

    classes = _solve_linear(size_for_classes, target)
    names = "[" + "]/[".join(sorted({h.head.section.strip("[]") for h in heads})) + "]"
    old = sorted({h.classes for h in heads})
    old_text = "/".join(map(str, old))
    if classes is not None:
        edits = _changed(_class_edits(text, heads, classes))
        also = ""
        if (len({h.mult for h in heads}) == 1 and len({h.per for h in heads}) == 1
                and all(isinstance(h.attrs, YoloAttrs) for h in heads)):
            num, per = heads[0].mult, heads[0].per
            filters = num * (classes + per)
            others = [(m, filters // m - per) for m in range(1, 10)
                      if m != num and filters % m == 0 and filters // m - per >= 1]
            if others:
                also = (" (the same sizes also fit " + "; ".join(
                    f"{m} anchor{'s' * (m > 1)} per head with classes={k}" for m, k in others)
                    + ": the training's .names file, one line per class, settles it)")
        return [Finding(
            "class-count", "error",
            f"the file matches {config.path} exactly with classes={classes} at every one of "
            f"its {len(heads)} {names} head{'s' * (len(heads) > 1)} (the cfg has {old_text}): "
            f"the weights were trained for {classes} class{'es' * (classes != 1)}{also}",
            fix=f"change these {len(edits)} lines of {config.path} (or use the cfg the "
                f"weights were trained with); to keep only the backbone for training another "
                f"head, cut the layers before the first changed one from the weights with the "
                f"fixed cfg: yolo-io partial CFG WEIGHTS {min(e.layer for e in edits)} -o "
                f"backbone.conv.{min(e.layer for e in edits)}",
            layer=_ref(heads[0].head), edits=edits)]
    # Another number of anchors per head m: filters = m * (classes + per) at every head.
    if (not all(isinstance(h.attrs, YoloAttrs) for h in heads)
            or len({h.per for h in heads}) != 1 or len({h.mult for h in heads}) != 1):
        return []
    per, num = heads[0].per, heads[0].mult
    low, high = size_for_classes(1), size_for_classes(2)
    if low is None or high is None or high == low:
        return []
    per_filter, rem = divmod(high - low, num)  # bytes per filter of every head together
    filters, rem2 = divmod(target - (low - per_filter * num * (1 + per)), per_filter)
    if rem or rem2 or filters <= per:
        return []
    total = min(h.attrs.total for h in heads if isinstance(h.attrs, YoloAttrs))
    options = [(m, filters // m - per) for m in range(1, total + 1)
               if filters % m == 0 and filters // m - per >= 1]
    options.sort(key=lambda o: (o[1] not in old, abs(o[0] - num)))
    for m, k in options:
        anchor_edits = _anchor_edits(text, heads, m, k)
        if text.size_with(anchor_edits, 20) == target:
            break
    else:
        return []
    choices = "; ".join(f"{m_} anchor{'s' * (m_ > 1)} per head with classes={k_}"
                        for m_, k_ in options[:4])
    return [Finding(
        "anchors-per-head", "error",
        f"the file matches {config.path} exactly with filters={filters} at its {len(heads)} "
        f"{names} heads: {choices} (the cfg has {num} anchors per head and "
        f"classes={old_text})",
        fix=f"change these lines: filters = anchors in mask x (classes + {per}); the lines "
            f"below are for {m} anchors per head with classes={k}, their masks list the first "
            f"{m} of each head's anchors: pick the ones it was trained with",
        layer=_ref(heads[0].head), edits=_changed(anchor_edits))]


def _anchor_edits(text: _Text, heads: Iterable[_Head], m: int, k: int) -> list[CfgEdit]:
    edits = []
    for h in heads:
        assert isinstance(h.attrs, YoloAttrs)
        mask = list(h.attrs.mask[:m])
        mask += [i for i in range(h.attrs.total) if i not in mask][: m - len(mask)]
        edits.append(_edit(text, h.producer, "filters", m * (k + h.per)))
        edits.append(_edit(text, h.head, "mask", ",".join(map(str, mask))))
        edits.append(_edit(text, h.head, "classes", k))
    return edits


# -- .data and .names ---------------------------------------------------------

def _count_names(path: str) -> tuple[int, int]:
    """(lines darknet counts, of them blank): darknet's get_labels() takes every
    line, blank ones too; many converters count only the non-blank ones."""
    lines = read_names(path)
    return len(lines), sum(1 for x in lines if not x.strip())


def _class_file_findings(config: Config, data: str | os.PathLike[str] | None,
                         names: str | os.PathLike[str] | None,
                         weight_findings: Sequence[Finding]) -> list[Finding]:
    heads = _heads(config) or []
    out: list[Finding] = []
    head_classes = sorted({h.classes for h in heads})
    data_classes: int | None = None
    solved = [f for f in weight_findings if f.kind == "class-count"]
    if data is not None:
        data_path = os.fspath(data)
        options = read_data_file(data_path)[0]
        if "classes" in options:
            value, line = options["classes"]
            data_classes = atoi(value or "")
            if head_classes and head_classes != [data_classes]:
                heads_text = "/".join(map(str, head_classes))
                if solved and f"with classes={data_classes} " in solved[0].message:
                    fix = "the class-count fix makes the cfg agree with the weights and the .data"
                elif not any(f.kind in _FIT_KINDS for f in weight_findings):
                    fix = (f"the weights fit the cfg's heads: set classes={heads_text} at "
                           f"{data_path}:{line}")
                else:
                    fix = (f"make them equal: classes={heads_text} at {data_path}:{line}, or "
                           f"the cfg the weights were trained with")
                out.append(Finding(
                    "data-classes", "error",
                    f"{data_path}:{line} says classes={data_classes}, the heads of "
                    f"{config.path} have classes={heads_text}: darknet's detector reads the "
                    f"heads' count from the cfg and the .data count for the names, so they "
                    f"must agree", fix=fix))
        if names is None and options.get("names", (None, 0))[0]:
            candidate, line = options["names"]
            assert candidate is not None
            if os.path.isfile(candidate):
                names = candidate
            else:
                out.append(Finding(
                    "names-missing", "warning",
                    f"{data_path}:{line} names {candidate}, which is not a file from the "
                    f"current folder {os.getcwd()} (darknet opens it from there: \"Couldn't "
                    f"open file\")",
                    fix="run from the folder the path is relative to, give an absolute path, "
                        "or pass --names"))
    if names is not None:
        names_path = os.fspath(names)
        count, blank = _count_names(names_path)
        note = (f" ({blank} of them blank: darknet counts them, converters that skip blank "
                f"lines see {count - blank})" if blank else "")
        if head_classes and head_classes != [count]:
            out.append(Finding(
                "names-count", "error",
                f"{names_path} has {count} lines{note}, the heads of {config.path} have "
                f"classes={'/'.join(map(str, head_classes))}",
                fix="one class name per line, as many as the heads' classes="))
        if data_classes is not None and data_classes != count:
            out.append(Finding(
                "data-names", "error",
                f"{names_path} has {count} lines{note}, the .data file says "
                f"classes={data_classes}",
                fix="one class name per line, as many as classes="))
    return out


def explain_size_error(err: WeightsSizeError, config: Config, path: str, cfg: object) -> None:
    """Appends the best fix :func:`yolo_io.diagnose` finds (a class count with
    the cfg lines to change, a header width, a published model) to the message."""
    try:
        major, minor, revision, _, header_size, _, actual = _core.read_header(path)
        found = suggest(config, path, actual=actual, header_size=header_size,
                        version=(major, minor, revision), partial_layers=err.partial_layers,
                        source=cfg_text(cfg))
    except (OSError, YoloIOError):  # pragma: no cover - the file changed meanwhile
        return
    found = [f for f in found if not f.kind.startswith("header-")]  # the core says it already
    if found:
        best = found[0]
        text = f"{err.args[0]}\nLikely cause: {best.message}."
        if best.fix:
            text += f" Fix: {best.fix}" + (":" if best.edits else ".")
        text += "".join(f"\n  {edit}" for edit in best.edits)
        err.args = (text,)


explain_size_errors_with(explain_size_error)


record_params(globals())
