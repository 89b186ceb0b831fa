"""The permissions of what every writer creates (issue 27, item 3).

A new file gets 0666 minus the umask, as ``open()`` gives it, and a file
replaced keeps its own mode exactly. The core never calls ``umask()`` to
learn the mask: that call sets it for every thread of the process at once,
so a file another thread created in that moment got no umask at all.

Every writer of ``tests/test_writers_catalogue.py`` (the Python API and the
commands that write) runs here under ``umask 077``; the umask is restored
after each test.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import test_writers_catalogue
from test_writers_catalogue import CLI_WRITERS, PY_WRITERS, Model

from yolo_io import _cli

model = test_writers_catalogue.model  # the catalogue's fixture: the same model, inputs apart

pytestmark = pytest.mark.filterwarnings("ignore::yolo_io.CfgWarning")

ROOT = Path(__file__).resolve().parent.parent

# The suffix each output takes (the format of several comes from it). A
# writer or output new in the catalogue fails here until it is listed.
PY_SUFFIXES = {
    ("yolo_io.save", "path"): ".weights",
    ("yolo_io.save", "path (arrays and a cfg path)"): ".weights",
    ("yolo_io.save_npz", "path"): ".npz",
    ("yolo_io.save_safetensors", "path"): ".safetensors",
    ("yolo_io.save_safetensors", "path (a state dict)"): ".safetensors",
    ("yolo_io.save_fused", "weights_path"): ".weights",
    ("yolo_io.save_fused", "cfg_path"): ".cfg",
    ("yolo_io.onnx.export", "path"): ".onnx",
    ("yolo_io._diagnosis.doctor.plot", "path"): ".png",
    ("yolo_io._diagnosis.data.plot", "path"): ".png",
    ("yolo_io.testing.write_weights", "path"): ".weights",
}
CLI_SUFFIXES = {
    ("doctor", "--plot"): ".png",
    ("check-data", "--plot"): ".png",
    ("detect", "--out"): ".png",
    ("partial", "-o"): ".weights",
    ("convert", "-o"): ".weights",
    ("convert", "-o (.npz)"): ".npz",
    ("convert", "--fuse -o"): ".weights",
    ("convert", "--cfg-output"): ".cfg",
    ("convert", "the derived cfg output"): ".cfg",
    ("export", "-o"): ".onnx",
}
# TensorFlow's writers run Keras on TensorFlow, which a process picks once (this
# one runs Keras on torch): tests/test_tensorflow_export.py checks their modes
# in a child process of their own.
IN_A_CHILD = {("yolo_io.keras.export", "path (tflite)"),
              ("yolo_io.keras.export", "path (saved_model)"),
              ("export", "-o --format tflite"), ("export", "-o --format saved_model")}
NEEDS = {"yolo_io.onnx.export": "onnx", "export": "onnx",
         "yolo_io._diagnosis.doctor.plot": "matplotlib", "doctor": "matplotlib",
         "yolo_io._diagnosis.data.plot": "matplotlib", "check-data": "matplotlib",
         "detect": "onnxruntime"}
# A command's exit code when it writes (default 0): check-data's dataset and
# tiny cfg have findings (batch=1 is no training cfg), and the plot is written all
# the same.
EXIT = {"check-data": 1}

PY_CASES = [(writer, output) for writer, w in PY_WRITERS.items() for output in w.outputs]
CLI_CASES = [(command, option) for command, options in CLI_WRITERS.items()
             for option in options]


@pytest.fixture
def umask_077() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def test_the_catalogues_are_covered() -> None:
    assert set(PY_SUFFIXES) | IN_A_CHILD >= set(PY_CASES)
    assert set(CLI_SUFFIXES) | IN_A_CHILD >= set(CLI_CASES)
    assert set(PY_SUFFIXES) | set(CLI_SUFFIXES) | IN_A_CHILD == set(PY_CASES) | set(CLI_CASES)


def writing(kind: str, name: str, option: str) -> Callable[[Path, Model], None]:
    """A call of writer or command ``name`` writing its output ``option`` to a path."""
    if NEEDS.get(name):
        pytest.importorskip(NEEDS[name])
    if kind == "python":
        call = PY_WRITERS[name].outputs[option]

        def write(out: Path, m: Model) -> None:
            call(out, m)

        return write

    def run(out: Path, m: Model) -> None:
        argv = CLI_WRITERS[name][option](out, m)
        assert _cli.main(argv) == EXIT.get(name, 0), argv

    return run


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


CASES = ([("python", w, o) for w, o in PY_CASES if (w, o) not in IN_A_CHILD]
         + [("cli", c, o) for c, o in CLI_CASES if (c, o) not in IN_A_CHILD])
IDS = [f"{kind}:{name}:{option}" for kind, name, option in CASES]


@pytest.mark.parametrize(("kind", "name", "option"), CASES, ids=IDS)
def test_a_new_file_gets_the_umask(model: Model, umask_077: None, kind: str, name: str,
                                   option: str) -> None:
    suffix = (PY_SUFFIXES if kind == "python" else CLI_SUFFIXES)[(name, option)]
    call = writing(kind, name, option)
    inputs = {p.resolve() for p in model.inputs().values()}
    out = model.folder / f"out{suffix}"
    call(out, model)
    assert mode_of(out) == 0o600
    # Every file it made (a derived cfg, the other output of save_fused).
    made = {p: mode_of(p) for p in model.folder.rglob("*")
            if p.is_file() and p.resolve() not in inputs}
    assert made and set(made.values()) == {0o600}, made


@pytest.mark.parametrize(("kind", "name", "option"), CASES, ids=IDS)
def test_a_replaced_file_keeps_its_mode(model: Model, umask_077: None, kind: str, name: str,
                                        option: str) -> None:
    suffix = (PY_SUFFIXES if kind == "python" else CLI_SUFFIXES)[(name, option)]
    call = writing(kind, name, option)
    out = model.folder / f"out{suffix}"
    out.write_bytes(b"the old file")
    os.chmod(out, 0o640)  # the group's read is what the umask would remove
    call(out, model)
    assert out.read_bytes() != b"the old file"
    assert mode_of(out) == 0o640


@pytest.mark.parametrize(("kind", "name", "option"), CASES, ids=IDS)
def test_a_replaced_file_keeps_no_setuid_bit(model: Model, umask_077: None, kind: str, name: str,
                                             option: str) -> None:
    """The permission bits are kept, not setuid, setgid or sticky: the new
    file belongs to whoever wrote it."""
    suffix = (PY_SUFFIXES if kind == "python" else CLI_SUFFIXES)[(name, option)]
    call = writing(kind, name, option)
    out = model.folder / f"out{suffix}"
    out.write_bytes(b"the old file")
    os.chmod(out, 0o6755)
    call(out, model)
    assert out.read_bytes() != b"the old file"
    assert stat.S_IMODE(out.stat().st_mode) == 0o755


def test_nothing_in_the_core_calls_umask() -> None:
    """umask() sets the mask for the whole process: between umask(0) and
    umask(mask) a file any other thread creates gets no umask."""
    calls = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path in sorted((ROOT / "csrc").rglob("*.[ch]pp"))
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"\bumask\s*\(", line.split("//")[0])]
    assert not calls, calls
