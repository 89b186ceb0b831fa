"""Every writer, given one of its own inputs as its output, refuses and leaves
the input's bytes as they were.

Two catalogues: every command of ``yolo-io`` (from the argparse parser: a new
command fails ``test_every_command_is_classified`` until it is listed here as
writing or not), and every public writer of the Python API (every callable
whose name starts with save/export/write/plot/dump in ``yolo_io``, its public
submodules and their public classes: a new one fails
``test_every_python_writer_is_in_the_catalogue`` until it is covered). Each
input is given as each output three ways: its own name, a symbolic link to it
and a hard link to it (the refusal compares device and inode, not names).

The one exception, documented (README *Writing*): ``save()`` of arrays (no
file is an input then) over the file those arrays are mapped from writes a
new file atomically, the old mapping staying valid; that case is checked to
do so. A network's own file is refused even as a file of the same kind.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import inspect
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import TINY_CFG

os.environ.setdefault("KERAS_BACKEND", "torch")  # before yolo_io.keras imports Keras

import yolo_io
import yolo_io._diagnosis.data
import yolo_io._diagnosis.doctor
import yolo_io.keras
from yolo_io import _cli
from yolo_io.testing import write_weights

pytestmark = pytest.mark.filterwarnings("ignore::yolo_io.CfgWarning")

MODES = ("same name", "symbolic link", "hard link")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Model:
    folder: Path
    cfg: Path
    weights: Path

    def inputs(self) -> dict[str, Path]:
        return {"CFG": self.cfg, "WEIGHTS": self.weights}

    def hashes(self) -> dict[str, str]:
        return {name: digest(path) for name, path in self.inputs().items()}


@pytest.fixture
def model(tmp_path: Path) -> Model:
    # As in issue 22: the weights in a folder of their own, the cfg beside
    # where the output goes.
    cfg = tmp_path / "model.cfg"
    cfg.write_text(TINY_CFG)
    (tmp_path / "in").mkdir()
    weights = write_weights(tmp_path / "in" / "model.weights", cfg, seed=4, realistic=True)
    return Model(tmp_path, cfg, weights)


def alias(model: Model, target: Path, mode: str) -> Path:
    """``target`` itself, or a new symbolic or hard link to it of the same
    name in a folder of its own."""
    if mode == "same name":
        return target
    folder = model.folder / f"links-{mode.replace(' ', '-')}"
    folder.mkdir(exist_ok=True)
    link = folder / target.name
    if mode == "symbolic link":
        link.symlink_to(target)
    else:
        os.link(target, link)
    return link


def no_temporaries(model: Model) -> None:
    left = [p for p in model.folder.rglob(".yolo_io-*")]
    assert not left, left


# -- the command line -------------------------------------------------------------

# Each writing command: its outputs, as a function of (the output path, the
# model) giving the arguments. The names of the links carry the suffix the
# output option expects.
CliCase = Callable[[Path, Model], list[str]]


def _derived_cfg(out: Path, m: Model) -> list[str]:
    """``convert --fuse -o X.weights`` with no --cfg-output writes X.cfg: the
    input CFG here (issue 22, item 2)."""
    return ["convert", str(m.cfg), str(m.weights), "-o", str(out.with_suffix(".weights")),
            "--fuse"]


def _data_file(m: Model) -> str:
    """A .data file beside the model, for ``check-data`` (its own checks
    come after the refusal)."""
    data = m.folder / "obj.data"
    data.write_text("classes=1\ntrain=train.txt\n")
    return str(data)


def _detect_into(out: Path, m: Model) -> list[str]:
    """``detect --out DIR`` writes ``DIR/<the image's name>``: an image named
    as ``out`` (in a folder of its own) makes ``out`` the file written; when
    Pillow cannot write that suffix (.cfg, .weights) it writes
    ``DIR/<the image's name>.png``, made here a symbolic link to ``out``."""
    from PIL import Image

    from yolo_io._inference.draw import output_name

    images = m.folder / "images"
    images.mkdir(exist_ok=True)
    image = images / out.name
    Image.new("RGB", (12, 10), (200, 30, 30)).save(image, format="PNG")
    written = out.parent / output_name(out.name)
    if written != out:
        written.symlink_to(out)
    return ["detect", str(m.cfg), str(m.weights), str(image), "--out", str(out.parent),
            "--no-progress"]


CLI_WRITERS: dict[str, dict[str, CliCase]] = {
    "detect": {"--out": _detect_into},
    "check-data": {
        "--plot": lambda out, m: ["check-data", _data_file(m), "--cfg", str(m.cfg),
                                  "--no-progress", "--plot", str(out)],
    },
    "doctor": {
        "--plot": lambda out, m: ["doctor", str(m.cfg), str(m.weights), "--no-progress",
                                  "--plot", str(out)],
    },
    "partial": {
        "-o": lambda out, m: ["partial", str(m.cfg), str(m.weights), "2", "-o", str(out)],
    },
    "convert": {
        "-o": lambda out, m: ["convert", str(m.cfg), str(m.weights), "-o", str(out)],
        "-o (.npz)": lambda out, m: ["convert", str(m.cfg), str(m.weights), "-o", str(out),
                                     "--naming", "yolo_io"],
        "--fuse -o": lambda out, m: ["convert", str(m.cfg), str(m.weights), "-o", str(out),
                                     "--fuse"],
        "--cfg-output": lambda out, m: ["convert", str(m.cfg), str(m.weights), "-o",
                                        str(m.folder / "fused.weights"), "--fuse",
                                        "--cfg-output", str(out)],
        "the derived cfg output": _derived_cfg,
    },
    "export": {
        "-o": lambda out, m: ["export", str(m.cfg), str(m.weights), "-o", str(out)],
        "-o --format tflite": lambda out, m: ["export", str(m.cfg), str(m.weights), "-o",
                                              str(out), "--format", "tflite"],
        "-o --format saved_model": lambda out, m: ["export", str(m.cfg), str(m.weights), "-o",
                                                   str(out), "--format", "saved_model"],
    },
}

CLI_NOT_WRITING = {
    "inspect": "prints only",
    "check": "prints only",
    "verify": "reads --onnx, or exports into a temporary folder of its own",
    "demo": "writes only into --dir, its own files, and reads no input",
}


def subcommands() -> set[str]:
    parser = _cli._parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    return set(actions[0].choices)


def test_every_command_is_classified() -> None:
    assert subcommands() == set(CLI_WRITERS) | set(CLI_NOT_WRITING)
    assert not set(CLI_WRITERS) & set(CLI_NOT_WRITING)


# The inputs of a command that does not take both (default: CFG and WEIGHTS).
CLI_INPUTS = {"check-data": ("CFG",)}

CLI_CASES = [(command, option, name, mode) for command, options in CLI_WRITERS.items()
             for option in options for name in CLI_INPUTS.get(command, ("CFG", "WEIGHTS"))
             for mode in MODES
             # the derived cfg output can only be the CFG (it ends in .cfg)
             if not (option == "the derived cfg output" and name == "WEIGHTS")]


@pytest.mark.parametrize(("command", "option", "name", "mode"), CLI_CASES)
def test_a_command_refuses_its_input_as_output(model: Model, capsys: pytest.CaptureFixture[str],
                                               command: str, option: str, name: str,
                                               mode: str) -> None:
    before = model.hashes()
    target = model.inputs()[name]
    out = alias(model, target, mode)
    argv = CLI_WRITERS[command][option](out, model)
    if option == "the derived cfg output" and mode == "same name":
        # -o model.weights beside model.cfg: a new file, whose .cfg is the input
        assert not Path(argv[4]).exists()
    code = _cli.main(argv)
    captured = capsys.readouterr()
    assert code == _cli.EXIT_USAGE, (argv, captured.err)
    assert "an output that is one of the inputs" in (_cli.__doc__ or "").replace("\n      ", " ")
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("yolo-io: error: "), captured.err
    assert f"is the input {name}" in lines[0] and "Traceback" not in captured.err
    assert model.hashes() == before
    if mode == "symbolic link":
        assert out.is_symlink() and out.resolve() == target.resolve()
    no_temporaries(model)
    assert not (model.folder / "fused.weights").exists()


# -- the Python API ----------------------------------------------------------------

WRITER_PREFIXES = ("save", "export", "write", "plot", "dump")


def public_modules() -> list[Any]:
    names = ["yolo_io"] + [f"yolo_io.{m.name}" for m in pkgutil.iter_modules(yolo_io.__path__)
                           if not m.name.startswith("_")]
    # yolo_io._diagnosis.doctor.plot is not exported, but it is what `doctor --plot` calls;
    # yolo_io._diagnosis.data.plot is what `check-data --plot` calls.
    return [importlib.import_module(n) for n in names] + [yolo_io._diagnosis.doctor,
                                                          yolo_io._diagnosis.data]


def discovered_writers() -> set[str]:
    found: dict[int, str] = {}

    def visit(owner: str, namespace: Any) -> None:
        for attr, obj in vars(namespace).items():
            if attr.startswith("_") or not callable(obj):
                continue
            if inspect.isclass(obj):
                if obj.__module__.startswith("yolo_io") and inspect.ismodule(namespace):
                    visit(f"{owner}.{attr}", obj)
                continue
            module = getattr(obj, "__module__", "") or ""
            if attr.startswith(WRITER_PREFIXES) and module.startswith("yolo_io"):
                found.setdefault(id(obj), f"{owner}.{attr}")

    for module in public_modules():
        visit(module.__name__, module)
    return set(found.values())


@dataclass
class Writer:
    """A writer: ``outputs`` maps the name of each output argument to a call
    writing there (``out``) from the model; ``in_place`` lists the (output,
    input) pairs that are a documented rewrite in place."""

    outputs: dict[str, Callable[[Path, Model], object]]
    in_place: frozenset[tuple[str, str]] = frozenset()
    inputs: tuple[str, ...] = ("CFG", "WEIGHTS")


def _load(m: Model) -> yolo_io.Network:
    return yolo_io.load(m.weights, m.cfg)


def _onnx_export(out: Path, m: Model) -> object:
    from yolo_io.onnx import export

    return export(out, _load(m))


def _plot(out: Path, m: Model) -> object:
    net = _load(m)
    return yolo_io._diagnosis.doctor.plot(net, out, yolo_io.doctor(net, progress=False))


def _data_plot(out: Path, m: Model) -> object:
    from yolo_io._diagnosis.data import check_data, plot

    report = check_data(_data_file(m), cfg=m.cfg, root=m.folder, progress=False)
    return plot(report, out)


PY_WRITERS: dict[str, Writer] = {
    "yolo_io.save": Writer(
        {"path": lambda out, m: yolo_io.save(out, _load(m)),
         "path (arrays and a cfg path)": lambda out, m: yolo_io.save(
             out, {layer.index: dict(layer.params) for layer in _load(m)}, m.cfg)}),
        # Arrays mapped from a file are refused over it, as the network's own file is.
    "yolo_io.save_npz": Writer({"path": lambda out, m: yolo_io.save_npz(out, _load(m))}),
    "yolo_io.save_safetensors": Writer({
        "path": lambda out, m: yolo_io.save_safetensors(out, _load(m)),
        "path (a state dict)": lambda out, m: yolo_io.save_safetensors(out, _load(m),
                                                                       fuse=True)}),
    "yolo_io.save_fused": Writer(
        {"weights_path": lambda out, m: yolo_io.save_fused(out, m.folder / "f.cfg", _load(m)),
         "cfg_path": lambda out, m: yolo_io.save_fused(m.folder / "f.weights", out, _load(m))}),
    "yolo_io.onnx.export": Writer({"path": _onnx_export}),
    # Refused before TensorFlow is imported: no TensorFlow needed here.
    "yolo_io.keras.export": Writer({
        "path (tflite)": lambda out, m: yolo_io.keras.export(out, _load(m), format="tflite"),
        "path (saved_model)": lambda out, m: yolo_io.keras.export(out, _load(m))}),
    "yolo_io._diagnosis.doctor.plot": Writer({"path": _plot}),
    "yolo_io._diagnosis.data.plot": Writer({"path": _data_plot}, inputs=("CFG",)),
    "yolo_io.testing.write_weights": Writer(
        {"path": lambda out, m: write_weights(out, m.cfg)}, inputs=("CFG",)),
}


def test_every_python_writer_is_in_the_catalogue() -> None:
    assert discovered_writers() == set(PY_WRITERS)


PY_CASES = [(writer, output, name, mode) for writer, w in PY_WRITERS.items()
            for output in w.outputs for name in w.inputs for mode in MODES]


@pytest.mark.parametrize(("writer", "output", "name", "mode"), PY_CASES)
def test_a_writer_refuses_its_input_as_output(model: Model, writer: str, output: str, name: str,
                                              mode: str) -> None:
    w = PY_WRITERS[writer]
    if writer in ("yolo_io._diagnosis.doctor.plot", "yolo_io._diagnosis.data.plot"):
        pytest.importorskip("matplotlib", reason="the plot needs matplotlib (the plot extra)")
    before = model.hashes()
    target = model.inputs()[name]
    out = alias(model, target, mode)
    call = w.outputs[output]
    if (output, name) in w.in_place:
        # The documented rewrite in place: atomic, the old mapping valid, and
        # the result loads back as a network of the same cfg.
        call(out, model)
        cfg, weights = model.cfg, out
        if writer == "yolo_io.save_fused":
            cfg = out if output == "cfg_path" else model.folder / "f.cfg"
            weights = out if output == "weights_path" else model.folder / "f.weights"
        assert len(yolo_io.load(weights, cfg)) == len(yolo_io.parse_cfg(model.cfg))
        if writer == "yolo_io.save":  # nothing asked to change: the same bytes
            assert model.hashes() == before
    else:
        with pytest.raises(yolo_io.OutputIsInputError, match="is the ") as err:
            call(out, model)
        assert err.value.input and err.value.output
        assert model.hashes() == before
    if mode == "symbolic link":
        assert out.is_symlink()
    no_temporaries(model)
