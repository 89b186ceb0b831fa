"""doctor() and plot(): the health check of a network's numbers, on small
cfgs whose files are corrupted on purpose at the bytes where each array lives."""

from __future__ import annotations

import io
import os
import select
import struct
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import yolo_io
from yolo_io._diagnosis.diagnose import Finding, LayerRef
from yolo_io._diagnosis.doctor import BN_EPS, MAX_BN_GAIN, MAX_BN_SCALE, doctor, plot
from yolo_io.testing import write_weights

# 0, 1: conv with batch norm; 2: maxpool (stores nothing); 3: conv without
# batch norm; 4: connected with batch norm (after its weights); 5: connected.
CFG = """\
[net]
width=16
height=16
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=8
size=1
activation=linear

[connected]
output=12
batch_normalize=1
activation=leaky

[connected]
output=4
activation=linear
"""

# Arrays whose filters are not on the first axis, and prefixed names:
# 0: deconvolutional, weights (c, n, k, k); 1: rnn with batch norm
# (input_layer.*, self_layer.*, output_layer.*).
EXOTIC_CFG = """\
[net]
width=4
height=4
channels=2

[deconvolutional]
filters=6
size=2
stride=2
activation=linear

[rnn]
batch_normalize=1
output=5
hidden=3
activation=leaky
"""

Edit = Callable[[npt.NDArray[np.float32]], None]


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    return write_weights(tmp_path / "clean.weights", CFG, seed=3, realistic=True)


@pytest.fixture
def net(clean: Path) -> Iterator[yolo_io.Network]:
    with yolo_io.load(clean, CFG) as n:
        yield n


def corrupt(src: Path, cfg: str, edits: dict[tuple[int, str], Edit], *,
            partial: bool = False) -> yolo_io.Network:
    """A copy of ``src`` with each array ``(layer, name)`` changed in place by its
    edit (on a writeable view of the copy's bytes at ``layer.offset`` + 4 *
    the spec's offset), loaded."""
    data = bytearray(src.read_bytes())
    with yolo_io.load(src, cfg, partial=partial) as original:
        for (index, name), edit in edits.items():
            layer = original[index]
            spec = next(s for s in layer.param_specs if s.name == name)
            view = np.frombuffer(data, dtype="<f4", count=spec.size,
                                 offset=layer.offset + 4 * spec.offset).reshape(spec.shape)
            edit(view)
    dst = src.with_name(f"bad-{len(list(src.parent.glob('bad-*')))}.weights")
    dst.write_bytes(bytes(data))
    return yolo_io.load(dst, cfg, partial=partial)


def setter(index: Any, value: float) -> Edit:
    """An edit that sets ``a[index] = value``."""
    def edit(a: npt.NDArray[np.float32]) -> None:
        a[index] = value
    return edit


def only(findings: tuple[Finding, ...], kind: str) -> Finding:
    found = [f for f in findings if f.kind == kind]
    assert len(found) == 1, findings
    return found[0]


def ref(net: yolo_io.Network, index: int) -> LayerRef:
    layer = net[index]
    return LayerRef(layer.index, layer.type, layer.line)


# -- findings -----------------------------------------------------------------

def test_clean_realistic_file_has_no_findings(net: yolo_io.Network) -> None:
    assert doctor(net, progress=False).findings == ()


def test_clean_random_file_has_no_findings(tmp_path: Path) -> None:
    path = write_weights(tmp_path / "r.weights", CFG, seed=0)  # N(0, 1), not realistic
    with yolo_io.load(path, CFG) as n:
        assert doctor(n, progress=False).findings == ()


def test_non_finite(clean: Path) -> None:
    def weights(a: npt.NDArray[np.float32]) -> None:
        a[2, 1, 0, 1] = np.nan
        a[5, 0, 2, 2] = np.nan
        a[7, 2, 1, 1] = np.inf

    bad = corrupt(clean, CFG, {(0, "weights"): weights,
                               (3, "biases"): setter(4, -np.inf),
                               (5, "weights"): setter((1, 7), np.nan)})
    findings = doctor(bad, progress=False).findings
    assert [(f.kind, f.severity, f.layer) for f in findings] == [
        ("non-finite", "error", ref(bad, 0)),
        ("non-finite", "error", ref(bad, 3)),
        ("non-finite", "error", ref(bad, 5)),
    ]
    conv, bias, dense = findings
    assert conv.message.startswith(bad[0].location)
    assert "'weights' (8, 3, 3, 3) has 2 NaN and 1 +Inf among its 216 values" in conv.message
    assert "first at index (2, 1, 0, 1)" in conv.message
    assert "'biases' (8,) has 0 NaN and 1 -Inf" in bias.message
    assert "first at index 4" in bias.message
    assert "first at index (1, 7)" in dense.message
    assert conv.fix


def test_non_finite_in_bn_arrays_is_not_also_extreme(clean: Path) -> None:
    bad = corrupt(clean, CFG, {(1, "scales"): setter(0, np.inf),
                               (1, "rolling_variance"): setter(1, np.nan)})
    findings = doctor(bad, progress=False).findings
    assert sorted(f.kind for f in findings) == ["non-finite", "non-finite"]
    assert {f.layer for f in findings} == {ref(bad, 1)}
    assert "'scales'" in findings[0].message and "'rolling_variance'" in findings[1].message


def test_bad_variance(clean: Path) -> None:
    def variance(a: npt.NDArray[np.float32]) -> None:
        a[3] = -0.5
        a[9] = -2.0

    bad = corrupt(clean, CFG, {(1, "rolling_variance"): variance})
    f = only(doctor(bad, progress=False).findings, "bad-variance")
    assert (f.severity, f.layer) == ("error", ref(bad, 1))
    assert f.message.startswith(bad[1].location)
    assert "2 of 16 channels of 'rolling_variance' are negative (smallest -2; channels 3, 9)" \
        in f.message
    assert "sqrt" in f.message


def test_zero_variance(clean: Path) -> None:
    def variance(a: npt.NDArray[np.float32]) -> None:
        a[[0, 5]] = 0.0
        a[7] = -0.0  # also exactly zero

    bad = corrupt(clean, CFG, {(4, "rolling_variance"): variance})
    findings = doctor(bad, progress=False).findings
    assert [(f.kind, f.severity, f.layer) for f in findings] == [
        ("zero-variance", "warning", ref(bad, 4))]
    assert "3 of 12 channels of 'rolling_variance' are exactly 0 (channels 0, 5, 7)" \
        in findings[0].message


def test_dead_filters(clean: Path) -> None:
    def weights(a: npt.NDArray[np.float32]) -> None:
        a[[1, 6]] = 0.0
        a[3] = 0.0
        a[3, 0, 0, 0] = 1e-30  # not all zero: alive

    bad = corrupt(clean, CFG, {(0, "weights"): weights, (5, "weights"): setter(2, -0.0)})
    findings = doctor(bad, progress=False).findings
    assert [(f.kind, f.severity, f.layer) for f in findings] == [
        ("dead-filters", "warning", ref(bad, 0)), ("dead-filters", "warning", ref(bad, 5))]
    assert "2 of 8 output filters of 'weights' (8, 3, 3, 3)" in findings[0].message
    assert "(filters 1, 6)" in findings[0].message
    assert "1 of 4 output filters" in findings[1].message and "(filter 2)" in findings[1].message


def test_dead_filters_lists_the_first_few(clean: Path) -> None:
    bad = corrupt(clean, CFG, {(1, "weights"): setter(slice(None), 0.0)})
    f = only(doctor(bad, progress=False).findings, "dead-filters")
    assert "16 of 16 output filters" in f.message
    assert "filters 0, 1, 2, 3, 4, ... (11 more)" in f.message


def test_extreme_bn_scale_by_scale(clean: Path) -> None:
    bad = corrupt(clean, CFG, {(0, "scales"): setter(2, -2 * MAX_BN_SCALE)})
    f = only(doctor(bad, progress=False).findings, "extreme-bn-scale")
    assert (f.severity, f.layer) == ("warning", ref(bad, 0))
    assert f.message.startswith(bad[0].location)
    assert "1 of 8 batch-norm channels of 'scales'" in f.message
    assert f"above {MAX_BN_GAIN:g}" in f.message and f"above {MAX_BN_SCALE:g}" in f.message
    assert "(channel 2)" in f.message and "largest |scale| 2000" in f.message


def test_extreme_bn_scale_by_gain(clean: Path) -> None:
    # |scale| 50 is a fine scale, but over sqrt(1e-6 + 1e-5) it is a gain of 15076.
    bad = corrupt(clean, CFG, {(4, "scales"): setter(1, 50.0),
                               (4, "rolling_variance"): setter(1, 1e-6)})
    f = only(doctor(bad, progress=False).findings, "extreme-bn-scale")
    assert f.layer == ref(bad, 4)
    gain = 50 / np.sqrt(np.float32(1e-6) + BN_EPS)
    assert gain > MAX_BN_GAIN
    assert f"largest gain is {gain:.4g} (channel 1" in f.message


@pytest.mark.parametrize(("scale", "extreme"), [(31.0, False), (32.0, True)])
def test_zero_variance_gain_threshold(clean: Path, scale: float, extreme: bool) -> None:
    """Over sqrt(0 + 1e-5) a scale of 31 is a gain of 9803 (below 1e4), 32 of 10119."""
    bad = corrupt(clean, CFG, {(1, "scales"): setter(4, scale),
                               (1, "rolling_variance"): setter(4, 0.0)})
    kinds = sorted(f.kind for f in doctor(bad, progress=False).findings)
    assert kinds == (["extreme-bn-scale", "zero-variance"] if extreme else ["zero-variance"])


def test_negative_variance_is_not_also_extreme(clean: Path) -> None:
    bad = corrupt(clean, CFG, {(0, "rolling_variance"): setter(0, -1e-9)})
    assert [f.kind for f in doctor(bad, progress=False).findings] == ["bad-variance"]


def test_errors_come_first_then_layer_order(clean: Path) -> None:
    bad = corrupt(clean, CFG, {(0, "weights"): setter(0, 0.0),
                               (1, "rolling_variance"): setter(0, 0.0),
                               (4, "rolling_variance"): setter(0, -1.0),
                               (5, "biases"): setter(0, np.nan)})
    findings = doctor(bad, progress=False).findings
    assert [(f.severity, f.kind, f.layer.index if f.layer else None) for f in findings] == [
        ("error", "bad-variance", 4), ("error", "non-finite", 5),
        ("warning", "dead-filters", 0), ("warning", "zero-variance", 1)]
    assert all(isinstance(f, Finding) for f in findings)


def test_exotic_layouts_and_prefixed_names(tmp_path: Path) -> None:
    src = write_weights(tmp_path / "exotic.weights", EXOTIC_CFG, seed=1, realistic=True)
    with yolo_io.load(src, EXOTIC_CFG) as n:
        assert n[0].param_shapes["weights"] == (2, 6, 2, 2)  # (c, n, k, k)
        assert doctor(n, progress=False).findings == ()

    def deconv(a: npt.NDArray[np.float32]) -> None:
        a[:, 4] = 0.0  # output filter 4: axis 1
        a[1, :] = 0.0  # input channel 1 of every filter: no filter is dead

    bad = corrupt(src, EXOTIC_CFG, {(0, "weights"): deconv,
                                    (1, "self_layer.rolling_variance"): setter(2, -3.0),
                                    (1, "output_layer.weights"): setter(0, 0.0)})
    findings = doctor(bad, progress=False).findings
    assert [(f.kind, f.layer) for f in findings] == [
        ("bad-variance", ref(bad, 1)), ("dead-filters", ref(bad, 0)),
        ("dead-filters", ref(bad, 1))]
    assert "'self_layer.rolling_variance'" in findings[0].message
    assert "1 of 6 output filters" in findings[1].message and "(filter 4)" in findings[1].message
    assert "'output_layer.weights'" in findings[2].message


def test_partial_network_checks_only_loaded_layers(tmp_path: Path) -> None:
    src = write_weights(tmp_path / "part.weights", CFG, seed=2, layers=2, realistic=True)
    bad = corrupt(src, CFG, {(1, "weights"): setter((0, 0, 0, 0), np.nan)}, partial=True)
    assert bad.partial and not bad[3].loaded
    assert [(f.kind, f.layer) for f in doctor(bad, progress=False).findings] == [
        ("non-finite", ref(bad, 1))]


# -- output: nothing but the bar ----------------------------------------------

def test_nothing_is_printed_or_warned(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = corrupt(clean, CFG, {(0, "rolling_variance"): setter(0, -1.0),
                               (1, "scales"): setter(0, np.inf),
                               (1, "rolling_variance"): setter(1, 0.0),
                               (3, "weights"): setter(0, np.nan)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(doctor(bad, progress=False).findings) == 4
        assert len(doctor(bad).findings) == 4  # stderr is not a terminal under capsys
    assert caught == []
    assert capsys.readouterr() == ("", "")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar(net: yolo_io.Network, monkeypatch: pytest.MonkeyPatch) -> None:
    tqdm = pytest.importorskip("tqdm")
    stream = io.StringIO()  # not a terminal: progress=True forces the bar
    monkeypatch.setattr(sys, "stderr", stream)
    assert doctor(net, progress=True).findings == ()
    text = stream.getvalue()
    total = sum(layer.nbytes for layer in net)
    assert text.startswith("\rdoctor:")
    assert f"/{tqdm.tqdm.format_sizeof(total)} " in text  # bytes, unit_scale'd: "12.9k"
    assert "B/s]" in text and "100%" in text  # the finished bar is left on the stream


def test_progress_none_follows_the_terminal(net: yolo_io.Network,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tqdm")
    terminal, pipe = _Terminal(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", terminal)
    doctor(net)
    assert "doctor" in terminal.getvalue()
    monkeypatch.setattr(sys, "stderr", pipe)
    doctor(net)
    assert pipe.getvalue() == ""
    monkeypatch.setattr(sys, "stderr", terminal := _Terminal())
    doctor(net, progress=False)
    assert terminal.getvalue() == ""


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_progress_on_an_unsized_terminal(net: yolo_io.Network,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A new pseudo-terminal reports 0 x 0, where tqdm alone would draw nothing."""
    pytest.importorskip("tqdm")
    import pty

    master, slave = pty.openpty()
    with os.fdopen(master, "rb", buffering=0) as reader, \
            os.fdopen(slave, "w", encoding="utf-8") as terminal:
        assert os.get_terminal_size(terminal.fileno()) == (0, 0)
        monkeypatch.setattr(sys, "stderr", terminal)
        doctor(net)
        terminal.flush()
        # The kernel hands a pseudo-terminal's output over in pieces (a work
        # queue), so one read may see only the first frame: read until the last.
        bar, deadline = "", time.monotonic() + 10
        while "12.9k/12.9k" not in bar and time.monotonic() < deadline:
            ready, _, _ = select.select([reader], [], [], 0.5)
            if ready:
                bar += reader.read(65536).decode()
    assert "doctor: 100%" in bar and "12.9k/12.9k" in bar


def test_progress_without_tqdm(net: yolo_io.Network, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
    stream = _Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    assert doctor(net, progress=True).findings == ()
    assert stream.getvalue() == ""


# -- plot ---------------------------------------------------------------------

def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_plot(clean: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    bad = corrupt(clean, CFG, {(0, "weights"): setter((1, 0, 0, 0), np.nan),
                               (1, "rolling_variance"): setter(0, -1.0),
                               (4, "rolling_variance"): setter(slice(None), 0.0),
                               (4, "scales"): setter(0, np.inf),
                               (5, "weights"): setter(slice(None), 0.0)})
    findings = doctor(bad, progress=False).findings
    assert {f.severity for f in findings} == {"error", "warning"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Data has no positive values" and the like
        out = plot(bad, tmp_path / "doctor.png", findings)
    assert out == tmp_path / "doctor.png"
    data = out.read_bytes()
    assert data[:4] == b"\x89PNG"
    assert len(data) > 10_000
    assert png_size(data) == (1200, 700)


def test_plot_without_findings_or_batch_norm(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    cfg = "[net]\nwidth=4\nheight=4\nchannels=2\n[convolutional]\nfilters=3\nsize=1\n"
    src = write_weights(tmp_path / "nobn.weights", cfg, seed=0, realistic=True)
    with yolo_io.load(src, cfg) as n:
        out = plot(n, str(tmp_path / "nobn.png"))
    assert isinstance(out, Path)
    data = out.read_bytes()
    assert png_size(data) == (1200, 700) and len(data) > 10_000


def test_plot_is_atomic_and_keeps_the_mode(net: yolo_io.Network, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 22: the PNG is written under a temporary name and renamed over
    the target, which keeps its mode; a failure halfway leaves it as it was."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    target = tmp_path / "p.png"
    target.write_bytes(b"old plot")
    os.chmod(target, 0o640)
    real = Figure.savefig

    def half(self: Figure, fname: Any, **kwargs: Any) -> None:
        fname.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", half)
    with pytest.raises(OSError, match="No space"):
        plot(net, target)
    assert target.read_bytes() == b"old plot"
    assert not list(tmp_path.glob(".yolo_io-*"))
    monkeypatch.setattr(Figure, "savefig", real)
    plot(net, target)
    assert png_size(target.read_bytes()) == (1200, 700)
    assert os.stat(target).st_mode & 0o777 == 0o640
    assert not list(tmp_path.glob(".yolo_io-*"))


def test_plot_refuses_the_networks_files(net: yolo_io.Network) -> None:
    pytest.importorskip("matplotlib")
    for path in (net.path,):  # its cfg is text here; the catalogue test has a cfg file
        before = Path(path).read_bytes()
        with pytest.raises(yolo_io.OutputIsInputError, match="is the network's"):
            plot(net, path)
        assert Path(path).read_bytes() == before


def test_plot_needs_matplotlib(net: yolo_io.Network, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'yolo_io\[plot\]'"):
        plot(net, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_a_file_of_zeros_is_one_error(tmp_path: Path) -> None:
    cfg = tmp_path / "z.cfg"
    cfg.write_text(_ZERO_CFG)
    weights = write_weights(tmp_path / "z.weights", cfg, sparse=True)
    found = doctor(yolo_io.load(weights, cfg)).findings
    assert [(f.kind, f.severity) for f in found] == [("all-zero", "error")]
    assert "never filled in" in found[0].message


_ZERO_CFG = """\
[net]
width=8
height=8
channels=3

[convolutional]
batch_normalize=1
filters=4
size=3
pad=1
activation=leaky

[convolutional]
filters=2
size=1
activation=linear
"""
