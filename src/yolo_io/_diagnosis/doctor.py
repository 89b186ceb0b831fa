"""Is a loaded network healthy? A check of the numbers in its arrays.

:func:`diagnose` asks whether a ``.weights`` file fits its cfg; :func:`doctor`
asks whether the values that do fit make sense: NaN or Inf anywhere,
batch-norm variances that darknet turns into NaN or into huge gains, filters
whose weights are all zero. :func:`plot` draws the per-layer magnitudes with
the layers that have findings marked.

Both read one layer at a time from the mapped file, with vectorised NumPy
reductions that copy no array; :func:`doctor` reads each value about twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._base.deprecation import warn_deprecated
from .._base.paths import PathArg, shown
from .._base.progress import Progress, Reporter
from .._model.attrs import (
    DeconvolutionalAttrs,
    ImplicitAttrs,
    LocalAttrs,
    ShortcutAttrs,
)
from .._model.fusion import BN_EPSILON
from .diagnose import Diagnosis, Finding, LayerRef

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .._model.network import Layer, Network

__all__ = ["BN_EPS", "MAX_BN_GAIN", "MAX_BN_SCALE", "Checkup", "doctor", "plot"]

BN_EPS = BN_EPSILON
"""The epsilon darknet adds to the variance: ``sqrt(rolling_variance + .00001)``."""
MAX_BN_GAIN = 1e4
"""A batch-norm channel whose gain ``|scales| / sqrt(rolling_variance + BN_EPS)``
is above this is reported as ``"extreme-bn-scale"``."""
MAX_BN_SCALE = 1e3
"""A batch-norm channel whose ``|scales|`` is above this is reported as
``"extreme-bn-scale"``, whatever its variance."""

_SHOW = 5  # indices listed in a message
_RANK = {"error": 0, "warning": 1, "info": 2}
# Layers whose "weights" have the output filters on axis 1, not 0:
# deconvolutional (c, n, k, k), local (positions, n, c, k, k).
_FILTERS_ON_AXIS_1 = (DeconvolutionalAttrs, LocalAttrs)
# Layers whose "weights" are not filters (shortcut's per-input weights,
# implicit's per-channel values): no dead-filter check.
_NO_FILTERS = (ShortcutAttrs, ImplicitAttrs)

_NON_FINITE_FIX = ("the file is damaged (download it again and compare its checksum) or the "
                   "training diverged (take an earlier checkpoint, e.g. one of darknet's "
                   "*_1000.weights backups)")

Array = npt.NDArray[np.float32]


# -- doctor -------------------------------------------------------------------

def doctor(net: Network, *, progress: Progress = None) -> Checkup:
    """Check the numbers of every array of ``net``.

    Walks the layers that store parameters (in a partial network, those the
    file covers) one at a time and reports, as :class:`Finding` objects whose
    ``layer`` names the layer:

    - ``"non-finite"`` (error): NaN or Inf in an array, with how many of each,
      the array and the index of the first;
    - ``"bad-variance"`` (error): a negative ``rolling_variance``; darknet
      computes ``sqrt(variance + .00001)``, NaN for these channels;
    - ``"zero-variance"`` (warning): a ``rolling_variance`` exactly 0, a
      channel that never saw data in training;
    - ``"dead-filters"`` (warning): output filters whose weights are all
      exactly zero, with their count and the first few indices;
    - ``"all-zero"`` (error, then the only finding): every value is 0, a
      file that was never filled in;
    - ``"extreme-bn-scale"`` (warning): batch-norm channels whose gain
      ``|scales| / sqrt(rolling_variance + 1e-5)`` is above
      :data:`MAX_BN_GAIN` (1e4), or whose ``|scales|`` is above
      :data:`MAX_BN_SCALE` (1e3).

    Args:
        net: a loaded network (:func:`yolo_io.load`), not closed.
        progress: a bar over the bytes checked on stderr when it is a
            terminal (None, the default; needs ``tqdm``), always (True) or
            never (False), or a callback ``(done, total, what)`` with the
            bytes checked so far. Nothing else is ever written.

    Returns:
        A :class:`Checkup`, in the style of :func:`diagnose`'s
        :class:`Diagnosis`: its ``findings``, errors first, each severity in
        layer order (none for a healthy network), ``ok``, ``errors``,
        ``to_dict()`` and a printable summary.

    Example:
        >>> checkup = yolo_io.doctor(net)
        >>> print(checkup)                  # each finding, then a summary line
        >>> checkup.ok, checkup.findings
    """
    layers = [layer for layer in net if layer.param_specs and layer.loaded]
    total = sum(layer.nbytes for layer in layers)
    findings: list[Finding] = []
    with Reporter(progress, total, "doctor") as report, np.errstate(all="ignore"):
        done = 0
        for layer in layers:
            findings.extend(_check_layer(layer))
            done += layer.nbytes
            report(done, f"layer {layer.index}")
        report.finish()
    result = partial(Checkup, net.path, net.config.path,
                     arrays=sum(len(layer.param_specs) for layer in layers),
                     values=sum(layer.param_count for layer in layers))
    if layers and all(f.kind in _ZERO_KINDS for f in findings) and _all_zero(layers):
        # A file that was never filled in (a sparse or stopped copy): one finding, not one
        # per layer.
        return result((Finding(
            "all-zero", "error",
            f"every value of the {len(layers)} layers that store data in {net.path} is 0 "
            f"({total} bytes): the file was never filled in (a copy or download that stopped, "
            f"a placeholder)",
            fix="download or copy the file again and compare its size and checksum"),))
    findings.sort(key=lambda f: _RANK[f.severity])  # stable: layer order within a severity
    return result(tuple(findings))


@dataclass(frozen=True, eq=False)
class Checkup(Diagnosis):
    """What :func:`doctor` found in a network's values, in the style of
    :func:`diagnose`'s :class:`Diagnosis`: ``findings`` (errors first), ``ok``
    when none is an error, ``errors``, ``to_dict()``, and ``str()``: each
    finding, then a summary line. ``arrays`` and ``values``: what was checked.

    (doctor() used to return the tuple of findings: iterating, indexing,
    ``len()`` and comparing with a tuple still work for one release, with a
    DeprecationWarning; use ``.findings``.)"""

    arrays: int = 0
    values: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``weights``, ``cfg``, ``ok``, ``arrays``,
        ``values`` and ``findings``."""
        return {"weights": self.weights, "cfg": self.cfg, "ok": self.ok, "arrays": self.arrays,
                "values": self.values, "findings": [f.to_dict() for f in self.findings]}

    def __str__(self) -> str:
        errors = len(self.errors)
        verdict = (f"{errors} error(s), {len(self.findings) - errors} warning(s)" if self.findings
                   else "no problems found")
        summary = f"doctor: {self.arrays} arrays, {self.values:,} values in {self.weights}: {verdict}"
        return "\n".join([*(str(f) for f in self.findings), summary])

    # -- the old tuple of findings (deprecated) --

    def _old(self) -> tuple[Finding, ...]:
        # Once per result (list() calls __len__ and __iter__); stacklevel 4:
        # the caller of the __len__/__iter__/... that called this.
        if not self.__dict__.get("_warned"):
            warn_deprecated("using doctor()'s result as a tuple of findings",
                            "use its .findings (and .ok)", stacklevel=4)
            object.__setattr__(self, "_warned", True)
        return self.findings

    def __iter__(self) -> Iterator[Finding]:
        return iter(self._old())

    def __len__(self) -> int:
        return len(self._old())

    def __bool__(self) -> bool:  # as the tuple was: "any findings"
        return bool(self._old())

    def __getitem__(self, i: int) -> Finding:
        return self._old()[i]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, tuple):
            return self._old() == other
        if not isinstance(other, Checkup):
            return NotImplemented
        return (self.weights, self.cfg, self.findings, self.arrays, self.values) == (
            other.weights, other.cfg, other.findings, other.arrays, other.values)

    def __hash__(self) -> int:
        return hash((self.weights, self.cfg, self.findings, self.arrays, self.values))


_ZERO_KINDS = frozenset({"dead-filters", "zero-variance"})


def _all_zero(layers: Sequence[Layer]) -> bool:
    return not any(np.any(a) for layer in layers for a in layer.params.values())


def _check_layer(layer: Layer) -> Iterator[Finding]:
    """The findings of one layer (its arrays are read here, and only here)."""
    params = layer.params
    ref = LayerRef(layer.index, layer.type, layer.line)
    where = layer.location
    dead: list[Finding] = []
    attrs = layer.attrs
    for name, a in params.items():
        if a.size == 0:
            continue
        if _base(name) == "weights" and a.ndim >= 2 and not isinstance(attrs, _NO_FILTERS):
            # Per-filter min and max, reduced over the other axes in place (no
            # copy, even of a strided view); NaN propagates, so they also
            # tell whether the array is finite.
            axis = 1 if isinstance(attrs, _FILTERS_ON_AXIS_1) else 0
            others = tuple(i for i in range(a.ndim) if i != axis)
            lo, hi = a.min(axis=others), a.max(axis=others)
            finite = bool(np.isfinite(lo).all() and np.isfinite(hi).all())
            zero = np.flatnonzero((lo == 0) & (hi == 0))
            if zero.size:
                dead.append(Finding(
                    "dead-filters", "warning",
                    f"{where}: {zero.size} of {a.shape[axis]} output filters of {name!r} "
                    f"{_shape(a)} have all weights exactly 0 ({_indices('filter', zero)}): "
                    f"they output a constant",
                    fix="expected if the model was pruned; otherwise the training or the "
                        "converter that wrote the file lost these filters",
                    layer=ref))
        else:
            finite = bool(np.isfinite(a).all())
        if not finite:
            yield _non_finite(where, ref, name, a)
    for name in params:
        if _base(name) == "rolling_variance":
            prefix = name[: -len("rolling_variance")]
            yield from _check_bn(where, ref, name, params[name], prefix, params)
    yield from dead


def _non_finite(where: str, ref: LayerRef, name: str, a: Array) -> Finding:
    # Only for a broken array; each temporary is freed before the next.
    first = tuple(int(i) for i in np.unravel_index(int(np.argmax(~np.isfinite(a))), a.shape))
    nan = int(np.count_nonzero(np.isnan(a)))
    pos = int(np.count_nonzero(a == np.inf))
    neg = int(np.count_nonzero(a == -np.inf))
    at = first[0] if len(first) == 1 else first
    infs = f"{pos + neg} Inf ({pos} +Inf, {neg} -Inf)" if pos and neg else \
        f"{pos + neg} {'+' if pos else '-'}Inf" if pos or neg else "0 Inf"
    return Finding(
        "non-finite", "error",
        f"{where}: {name!r} {_shape(a)} has {nan} NaN and {infs} among its {a.size} values; "
        f"the first at index {at}",
        fix=_NON_FINITE_FIX, layer=ref)


def _check_bn(where: str, ref: LayerRef, name: str, variance: Array, prefix: str,
              params: Mapping[str, Array]) -> Iterator[Finding]:
    var = variance.astype(np.float64).ravel()
    n = var.size
    negative = np.flatnonzero(var < 0)
    if negative.size:
        yield Finding(
            "bad-variance", "error",
            f"{where}: {negative.size} of {n} channels of {name!r} are negative (smallest "
            f"{var[negative].min():.6g}; {_indices('channel', negative)}): darknet computes "
            f"sqrt(variance + .00001), NaN for these, so their outputs are NaN",
            fix="a variance is never negative: the file is damaged or was written by a faulty "
                "converter; download or export it again",
            layer=ref)
    zero = np.flatnonzero(var == 0)
    if zero.size:
        yield Finding(
            "zero-variance", "warning",
            f"{where}: {zero.size} of {n} channels of {name!r} are exactly 0 "
            f"({_indices('channel', zero)}): channels that never saw data in training; "
            f"darknet divides them by sqrt(0 + .00001), which amplifies them "
            f"{1 / np.sqrt(BN_EPS):.0f}-fold (times their scale)",
            fix="harmless if these channels' scales are near 0 (pruned channels); otherwise "
                "train further on data that reaches them",
            layer=ref)
    scales = params.get(prefix + "scales")
    if scales is None or scales.size != n:
        return
    s = np.abs(scales.astype(np.float64).ravel())
    gain = s / np.sqrt(np.maximum(var, 0) + BN_EPS)
    usable = np.isfinite(s) & np.isfinite(var) & (var >= 0)  # the rest is reported above
    extreme = np.flatnonzero(usable & ((gain > MAX_BN_GAIN) | (s > MAX_BN_SCALE)))
    if extreme.size:
        top = int(extreme[np.argmax(gain[extreme])])
        yield Finding(
            "extreme-bn-scale", "warning",
            f"{where}: {extreme.size} of {n} batch-norm channels of {prefix + 'scales'!r} have "
            f"|scales| / sqrt(rolling_variance + {BN_EPS:g}) above {MAX_BN_GAIN:g} or |scales| "
            f"above {MAX_BN_SCALE:g} ({_indices('channel', extreme)}); the largest gain is "
            f"{gain[top]:.4g} (channel {top}: |scale| {s[top]:.4g}, variance {var[top]:.4g}), "
            f"the largest |scale| {s[extreme].max():.4g}",
            fix="such channels amplify noise and overflow float16 once batch norm is fused into "
                "the weights; check that training converged, or take an earlier checkpoint",
            layer=ref)


def _base(name: str) -> str:
    """``"input_layer.weights"`` -> ``"weights"`` (recurrent layers prefix their arrays)."""
    return name.rsplit(".", 1)[-1]


def _shape(a: Array) -> str:
    return "(" + ", ".join(map(str, a.shape)) + ("," if a.ndim == 1 else "") + ")"


def _indices(what: str, idx: npt.NDArray[np.intp]) -> str:
    shown = ", ".join(str(int(i)) for i in idx[:_SHOW])
    more = f", ... ({idx.size - _SHOW} more)" if idx.size > _SHOW else ""
    return f"{what}{'s' if idx.size > 1 else ''} {shown}{more}"


# -- plot ---------------------------------------------------------------------

_FIGSIZE = (12.0, 7.0)  # inches; at _DPI: 1200 x 700 pixels
_DPI = 100


def plot(net: Network, path: PathArg,
         findings: Diagnosis | Sequence[Finding] = ()) -> Path:
    """Draw the weight magnitudes and batch-norm statistics of ``net`` per layer.

    Two panels over the layer index, on log scales: the mean and the maximum
    of ``|weights|`` of each layer that has weights, and, for layers with batch
    norm, the mean of ``|scales|`` and the mean and minimum of
    ``rolling_variance``. A value a log scale cannot show (NaN, Inf, zero or
    negative) leaves a gap in its line and a red x at the bottom of its
    panel. Each layer that has one of ``findings`` gets a
    vertical line (red: an error, orange: a warning) labelled with its index.

    Args:
        net: a loaded network, not closed.
        path: where to write the PNG: atomically, as :func:`yolo_io.save`
            writes (a temporary in the same folder, fsync, rename; a replaced
            file keeps its mode). One of the network's files (by inode) is
            refused with OutputIsInputError.
        findings: findings to mark, typically ``doctor(net)`` (or its
            ``.findings``).

    Returns:
        ``path`` as a Path: a 1200 x 700 PNG (100 dpi).

    Raises:
        ImportError: matplotlib is not installed (``pip install 'yolo_io[plot]'``).
        OutputIsInputError: ``path`` is the network's weights or cfg file.
        OSError: ``path`` cannot be written; it is left as it was.

    Example:
        >>> yolo_io.plot(net, "yolov4.png", yolo_io.doctor(net))
    """
    if isinstance(findings, Diagnosis):
        findings = findings.findings
    try:
        # The object-oriented API draws with Agg without pyplot and without
        # touching the backend of the caller's own figures.
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError("yolo_io's plot() needs matplotlib: pip install 'yolo_io[plot]'") \
            from err
    from .._writing.atomic import network_inputs, refuse_inputs, resolve_target

    target = resolve_target(path)
    refuse_inputs(target, network_inputs(net))

    index: list[int] = []
    stats: list[tuple[float | None, ...]] = []
    for layer in net:
        if layer.param_specs and layer.loaded:
            index.append(layer.index)
            stats.append(_layer_stats(layer.params))
    x = np.array(index, dtype=np.float64)
    present = np.array([[v is not None for v in row] for row in stats], dtype=bool)
    y = np.array([[np.nan if v is None else v for v in row] for row in stats], dtype=np.float64)
    present, y = present.reshape(len(stats), 5), y.reshape(len(stats), 5)

    fig = Figure(figsize=_FIGSIZE, dpi=_DPI, layout="constrained")
    ax_w, ax_bn = fig.subplots(2, 1, sharex=True)
    _panel(ax_w, x, y[:, :2], present[:, :2], ("mean |weights|", "max |weights|"),
           "|weights|", "no layer with weights")
    _panel(ax_bn, x, y[:, 2:], present[:, 2:],
           ("mean |scales|", "mean rolling_variance", "min rolling_variance"),
           "batch norm", "no layer with batch norm")
    _mark(ax_w, ax_bn, findings)
    ax_w.set_xlim(-0.5, max(len(net), 1) - 0.5)
    ax_bn.set_xlabel("layer index")
    errors = sum(f.severity == "error" for f in findings)
    warns = sum(f.severity == "warning" for f in findings)
    fig.suptitle(f"{shown(Path(net.path).name)}: weights and batch-norm statistics per layer "
                 f"({errors} error(s), {warns} warning(s) marked)")
    from .._writing.atomic import WriterStream, atomic_file

    with atomic_file(target) as writer:
        fig.savefig(WriterStream(writer), dpi=_DPI, format="png")  # type: ignore[arg-type]
    return Path(target)


def _layer_stats(params: Mapping[str, Array]) -> tuple[float | None, ...]:
    """mean |w|, max |w|, mean |scales|, mean and min of rolling_variance of
    one layer, over all its sub-layers; None when it has no such array (a NaN
    or Inf in an array gives NaN or Inf)."""
    by_base: dict[str, list[Array]] = {}
    for name, a in params.items():
        if a.size:
            by_base.setdefault(_base(name), []).append(a)
    with np.errstate(all="ignore"):
        weights = by_base.get("weights", [])
        w_mean = w_max = None
        if weights:
            w_mean = _mean(np.abs(w) for w in weights)
            w_max = max(float(np.abs(w).max()) for w in weights)
        scales, var = by_base.get("scales", []), by_base.get("rolling_variance", [])
        s_mean = _mean(np.abs(s) for s in scales) if scales else None
        v_mean = _mean(var) if var else None
        v_min = min(float(v.min()) for v in var) if var else None
    return w_mean, w_max, s_mean, v_mean, v_min


def _mean(arrays: Iterable[npt.NDArray[np.float32]]) -> float:
    total, count = 0.0, 0
    for a in arrays:
        total += float(a.sum(dtype=np.float64))
        count += a.size
    return total / count


def _panel(ax: Axes, x: npt.NDArray[np.float64], ys: npt.NDArray[np.float64],
           has: npt.NDArray[np.bool_], labels: Sequence[str], ylabel: str, empty: str) -> None:
    """One log-scale panel: each column of ``ys`` a series over the layers
    where ``has`` is set. A value the log scale cannot show (NaN, Inf, 0,
    negative) leaves a gap in its line and an x at the bottom of the panel."""
    shown = False
    invalid = np.zeros(len(x), dtype=bool)
    for y, present, label, marker in zip(ys.T, has.T, labels, "o^v", strict=False):
        good = present & np.isfinite(y) & (y > 0)
        invalid |= present & ~good
        if good.any():
            ax.plot(x[present], np.where(good, y, np.nan)[present], marker=marker,
                    markersize=3, linewidth=1, label=label)
            shown = True
    if invalid.any():
        ax.plot(x[invalid], np.full(int(invalid.sum()), 0.02), linestyle="none", marker="x",
                color="red", transform=ax.get_xaxis_transform(), label="NaN, Inf or <= 0")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    if shown:
        ax.set_yscale("log")
        ax.legend(loc="best", fontsize=8)
    else:
        ax.text(0.5, 0.5, empty, transform=ax.transAxes, ha="center", va="center")


def _mark(ax_top: Axes, ax_bottom: Axes, findings: Sequence[Finding]) -> None:
    """A vertical line through both panels at every layer with a finding, its
    colour the worst severity, its index written above the top panel."""
    worst: dict[int, int] = {}
    for f in findings:
        if f.layer is not None:
            rank = _RANK[f.severity]
            worst[f.layer.index] = min(rank, worst.get(f.layer.index, rank))
    labelled: set[str] = set()
    for index, rank in sorted(worst.items()):
        severity = "error" if rank == 0 else "warning" if rank == 1 else "info"
        color = {"error": "red", "warning": "orange"}.get(severity, "gray")
        for ax in (ax_top, ax_bottom):
            label = None
            if ax is ax_top and severity not in labelled:
                label = f"layer with {'an' if severity == 'error' else 'a'} {severity}"
                labelled.add(severity)
            ax.axvline(index, color=color, alpha=0.6, linewidth=1, zorder=0, label=label)
        ax_top.text(index, 1.01, str(index), transform=ax_top.get_xaxis_transform(),
                    color=color, ha="center", va="bottom", fontsize=7, rotation=90)
    if labelled:
        ax_top.legend(loc="best", fontsize=8)
