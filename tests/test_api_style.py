"""One API style (issue 23, item 4): every writer takes where to write, then
what; options are keyword-only and no public function takes ``**kwargs``;
one ``progress`` type; diagnose() and doctor() return reports of one style;
the attrs records live in ``yolo_io.attrs``. Each old spelling still works,
with a DeprecationWarning."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TINY_CFG

import yolo_io
import yolo_io.keras
import yolo_io.onnx
import yolo_io.testing
import yolo_io.torch
from yolo_io.testing import write_weights

MODULES = (yolo_io, yolo_io.onnx, yolo_io.torch, yolo_io.keras, yolo_io.testing)
CLASSES = (yolo_io.Network, yolo_io.Layer, yolo_io.Config, yolo_io.CfgLayer)
# Optional parameters that are not options but the call's second subject,
# and so may be passed by position: a network's cfg, a fusion's layout, a
# size's version.
POSITIONAL = {("load", "cfg"), ("save", "cfg"), ("verify", "cfg"), ("fused", "layout"),
              ("fused_all", "layout"), ("fuse_into", "layout"), ("bn_params", "layout"),
              ("expected_size", "version"), ("header_bytes", "version")}
WRITERS: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
    "save": (yolo_io.save, ("path", "source")),
    "save_npz": (yolo_io.save_npz, ("path", "net")),
    "save_safetensors": (yolo_io.save_safetensors, ("path", "net")),
    "save_fused": (yolo_io.save_fused, ("weights_path", "cfg_path", "net")),
    "onnx.export": (yolo_io.onnx.export, ("path", "net")),
}


def public_callables() -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {}
    for module in MODULES:
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                found[f"{module.__name__}.{name}"] = obj
    for cls in CLASSES:
        for name, obj in vars(cls).items():
            if not name.startswith("_") and inspect.isfunction(obj):
                found[f"{cls.__name__}.{name}"] = obj
    return found


def test_the_public_callables_are_found() -> None:
    names = public_callables()
    assert {"yolo_io.load", "yolo_io.save", "yolo_io.onnx.export", "yolo_io.torch.state_dict",
            "Layer.fused", "Layer.bn_params", "yolo_io.testing.header_bytes"} <= set(names)


@pytest.mark.parametrize("name", sorted(public_callables()))
def test_options_are_keyword_only_and_no_function_takes_kwargs(name: str) -> None:
    params = list(inspect.signature(public_callables()[name]).parameters.values())
    assert not [p for p in params if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL)], name
    short = name.rsplit(".", 1)[-1]
    positional_options = [p.name for p in params if p.default is not p.empty
                          and p.kind is p.POSITIONAL_OR_KEYWORD
                          and (short, p.name) not in POSITIONAL]
    assert positional_options == [], f"{name}: options that are not keyword-only"


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_every_writer_takes_where_then_what(name: str) -> None:
    fn, order = WRITERS[name]
    params = list(inspect.signature(fn).parameters)
    assert tuple(params[:len(order)]) == order


def test_every_long_call_takes_the_one_progress_type() -> None:
    calls = [yolo_io.save, yolo_io.save_safetensors, yolo_io.doctor, yolo_io.onnx.verify]
    annotations = {inspect.signature(f).parameters["progress"].annotation for f in calls}
    assert annotations == {"Progress"}
    assert all(inspect.signature(f).parameters["progress"].default is None for f in calls)


@pytest.fixture
def net(tmp_path: Path) -> yolo_io.Network:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    return yolo_io.load(write_weights(tmp_path / "tiny.weights", cfg, seed=3), cfg)


def test_diagnose_and_doctor_report_in_one_style(net: yolo_io.Network) -> None:
    checkup = yolo_io.doctor(net, progress=False)
    diagnosis = yolo_io.diagnose(net.path, net.config.path)
    for report in (checkup, diagnosis):
        assert isinstance(report, yolo_io.Diagnosis)
        assert report.ok and report.errors == () and isinstance(report.findings, tuple)
        assert {"weights", "cfg", "ok", "findings"} <= set(report.to_dict())
        assert net.path in str(report)
    assert checkup.arrays > 0 and checkup.values == sum(layer.param_count for layer in net)


def test_the_progress_callback_gets_done_total_and_what(net: yolo_io.Network,
                                                        tmp_path: Path) -> None:
    events: list[tuple[int, int, str]] = []
    yolo_io.doctor(net, progress=lambda *event: events.append(event))
    total = sum(layer.nbytes for layer in net if layer.param_specs)
    assert events[-1][:2] == (total, total) and events[-1][2].startswith("layer ")
    with pytest.raises(TypeError, match="progress must be"):
        yolo_io.doctor(net, progress="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"called with \(done, total, what\)"):
        yolo_io.doctor(net, progress=events.append)  # a one-argument callback, up front
    assert yolo_io.doctor(net, progress=0).ok and yolo_io.doctor(net, progress=np.True_).ok
    written: list[tuple[int, int, str]] = []
    yolo_io.save(tmp_path / "c.weights", net, progress=lambda *event: written.append(event))
    assert written[-1] == (written[-1][1], written[-1][1], "writing")


# -- the old spellings -----------------------------------------------------------------


def test_attrs_records_at_the_top_level_are_deprecated() -> None:
    assert "ConvolutionalAttrs" not in yolo_io.__all__
    assert "attrs" not in yolo_io.__all__  # a star import would shadow the attrs package
    assert "ConvolutionalAttrs" in yolo_io.attrs.__all__
    with pytest.warns(DeprecationWarning, match=r"yolo_io\.attrs\.ConvolutionalAttrs"):
        old = yolo_io.ConvolutionalAttrs  # type: ignore[attr-defined]
    assert old is yolo_io.attrs.ConvolutionalAttrs
    with pytest.raises(AttributeError, match="no attribute 'NoSuchAttrs'"):
        yolo_io.NoSuchAttrs  # type: ignore[attr-defined]  # noqa: B018


def test_dtype_of_fused_by_position_is_deprecated(net: yolo_io.Network) -> None:
    new = net[0].fused("OIHW", dtype="float16")
    with pytest.warns(DeprecationWarning, match=r"dtype=\.\.\."):
        old = net[0].fused("OIHW", "float16")  # type: ignore[misc]
    np.testing.assert_array_equal(old[0], new[0])
    with pytest.raises(TypeError, match="multiple values"):
        net[0].fused("OIHW", "float16", dtype="float32")  # type: ignore[misc]
    with pytest.raises(TypeError, match="at most"):
        net[0].fused("OIHW", "float16", "CHW")  # type: ignore[misc]


def test_eps_of_bn_params_is_deprecated(net: yolo_io.Network) -> None:
    new = net[0].bn_params(bn_eps=1e-4)
    with pytest.warns(DeprecationWarning, match=r"bn_eps=\.\.\."):
        old = net[0].bn_params(eps=1e-4)  # type: ignore[call-arg]
    np.testing.assert_array_equal(old["rolling_variance"], new["rolling_variance"])
    with pytest.raises(TypeError, match="both"):
        net[0].bn_params(eps=1e-4, bn_eps=1e-4)  # type: ignore[call-arg]


def test_seen_of_header_bytes_by_position_is_deprecated() -> None:
    with pytest.warns(DeprecationWarning, match=r"seen=\.\.\."):
        old = yolo_io.testing.header_bytes((0, 2, 5), 7)  # type: ignore[misc]
    assert old == yolo_io.testing.header_bytes((0, 2, 5), seen=7)


def test_export_with_the_network_first_is_deprecated(net: yolo_io.Network,
                                                     tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    new = yolo_io.onnx.export(tmp_path / "new.onnx", net)
    with pytest.warns(DeprecationWarning, match=r"export\(path, net\)"):
        old = yolo_io.onnx.export(net, tmp_path / "old.onnx")  # type: ignore[call-overload]
    assert old.read_bytes() == new.read_bytes()
    with pytest.warns(DeprecationWarning, match=r"export\(path, net\)"):
        model = yolo_io.onnx.export(net)  # type: ignore[call-overload]
    assert model.SerializeToString() == yolo_io.onnx.export(None, net).SerializeToString()
    for old_call in (lambda: yolo_io.onnx.export(net, path=tmp_path / "kw.onnx"),
                     lambda: yolo_io.onnx.export(net=net)):
        with pytest.warns(DeprecationWarning, match=r"export\(path, net\)") as record:
            old_call()
        assert {w.filename for w in record} == {__file__}
    assert (tmp_path / "kw.onnx").read_bytes() == new.read_bytes()
    assert yolo_io.onnx.export(net=net, path=tmp_path / "new2.onnx").read_bytes() == \
        new.read_bytes()  # the new names, by name: no warning
    with pytest.raises(TypeError, match="missing"):
        yolo_io.onnx.export(tmp_path / "x.onnx")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="path must be a file name or None, not Config"):
        yolo_io.onnx.export(net.config, tmp_path / "x.onnx")  # type: ignore[call-overload]


@pytest.mark.parametrize(("writer", "options"), [
    (yolo_io.save, {}), (yolo_io.save_safetensors, {}),
    (yolo_io.save_safetensors, {"naming": "yolo_io"})])  # a state dict: one frame deeper
def test_a_one_argument_progress_callback_is_deprecated(net: yolo_io.Network, tmp_path: Path,
                                                        writer: Callable[..., Path],
                                                        options: dict[str, str]) -> None:
    written: list[int] = []
    with pytest.warns(DeprecationWarning, match=r"f\(done, total, what\)") as record:
        out = writer(tmp_path / "out.bin", net, progress=written.append, **options)
    assert written[-1] == out.stat().st_size
    assert [w.filename for w in record] == [__file__]


def test_doctors_result_as_a_tuple_is_deprecated(net: yolo_io.Network) -> None:
    checkup = yolo_io.doctor(net, progress=False)
    with pytest.warns(DeprecationWarning, match=r"\.findings"):
        assert checkup == ()
    uses: list[tuple[Callable[[Any], object], object]] = [
        (len, 0), (list, []), (bool, False), (lambda c: c == (), True)]
    for old_use, was in uses:
        fresh = yolo_io.doctor(net, progress=False)
        with pytest.warns(DeprecationWarning, match=r"\.findings") as record:
            assert old_use(fresh) == was
        assert len(record) == 1 and record[0].filename == __file__  # once, at the caller
    assert checkup == yolo_io.doctor(net, progress=False)  # two reports compare as reports


def test_verifys_one_argument_progress_is_deprecated(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("cv2")
    cfg = ("[net]\nwidth=16\nheight=16\nchannels=3\n[convolutional]\nfilters=4\nsize=3\n"
           "pad=1\nactivation=leaky\n")
    net = yolo_io.load(write_weights(tmp_path / "v.weights", cfg, realistic=True), cfg)
    stages: list[str] = []
    with pytest.warns(DeprecationWarning, match=r"f\(done, total, what\)"):
        yolo_io.onnx.verify(net, progress=stages.append)
    assert stages == ["exporting to ONNX", "running onnxruntime", "running OpenCV",
                      "comparing"]  # as before
    events: list[tuple[int, int, str]] = []
    yolo_io.onnx.verify(net, progress=lambda *event: events.append(event))
    assert [e[:2] for e in events] == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
