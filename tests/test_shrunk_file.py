"""A weights file that shrinks after ``load()`` (issue 22, item 3).

The arrays a Network hands out are the file's pages: a view a user holds
and reads after the file was truncated is SIGBUS, as with ``np.memmap``
(README, *Lifetimes*; ``tests/test_hostile.py``). Every reader inside
yolo_io must not die of it: the writers, the adapters, the exporters and
the fusion check, in the core, that the file still holds a layer's bytes
before they read them through the mapping (or read them with ``pread``),
and raise a FormatError naming the file, the layer and the sizes.

``READERS`` lists every public reader of parameters. Each runs in a child
process, so that a SIGBUS fails its case alone, once for every way of
shrinking the file in ``SHRINKS``, on a fresh copy and a fresh ``load()``;
then on a ``load(copy=True)`` snapshot taken before the shrink, which must
still work. A new reader of parameters is one more entry in ``READERS``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

# conv (with batch norm, ~31 KB: several pages), conv (~150 KB), a layer that
# stores nothing, connected without batch norm (the legacy header transposes it).
CFG = """[net]
width=16
height=16
channels=3

[convolutional]
batch_normalize=1
filters=256
size=3
stride=1
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[connected]
output=10
activation=linear
"""

# The models of the adapters: darknet's layers in order.
TORCH_MODEL = r'''
import torch
from torch import nn
import yolo_io.torch

def model(eps=1e-5, bn=True, head=True):
    def block(cin, cout):
        if not bn:
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.1)]
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout, eps=eps),
                nn.LeakyReLU(0.1)]
    return nn.Sequential(*block(3, 256), *block(256, 16), nn.MaxPool2d(2, 2),
                         *([nn.Flatten(), nn.Linear(1024, 10)] if head else []))
'''

KERAS_MODEL = r'''
import keras
from keras import layers
import yolo_io.keras

def model(bn=True):
    x = inputs = keras.Input((16, 16, 3))
    for filters in (256, 16):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=not bn)(x)
        if bn:
            x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU(0.1)(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dense(10)(layers.Flatten()(x))
    return keras.Model(inputs, x)
'''

FUSE_INTO_TARGETS = r'''
import numpy as np
targets = {i: (np.empty_like(w), np.empty_like(b)) for i, (w, b) in net.fused_all().items()}
'''

class Reader(NamedTuple):
    call: str  # run after the shrink, on `net`
    setup: str = ""  # run before it
    needs: str = ""  # the modules it needs, separated by commas
    intact: frozenset[str] = frozenset()  # SHRINKS that leave every byte it reads: ok


CONVS = "\nimport numpy as np\nconvs = [layer for layer in net if layer.fusion == 'conv']\n"
# The shrinks that cut only the connected layer, the last.
CONVS_INTACT = frozenset({"into the last layer's data", "by one float"})

READERS: dict[str, Reader] = {
    # -- the arrays and the fusion
    "Layer.params": Reader("[float(v.sum()) for layer in net for v in layer.params.values()]"),
    "Layer.source_params": Reader(
        "[float(v.sum()) for layer in net for v in layer.source_params.values()]"),
    "Network.raw": Reader("int(net.raw.sum())"),
    "Layer.fused": Reader("[layer.fused() for layer in net if layer.fusion]"),
    "Layer.fused(HWIO, float16, threads=2)": Reader(
        "[layer.fused('HWIO' if layer.fusion == 'conv' else 'IO', dtype='float16', threads=2) "
        "for layer in net if layer.fusion]"),
    "Layer.bn_params": Reader("[layer.bn_params() for layer in convs]", CONVS,
                              intact=CONVS_INTACT),
    "Network.fused_all": Reader("net.fused_all()"),
    "Network.fused_all(HWIO, bfloat16, fuse=False)": Reader(
        "net.fused_all('HWIO', dtype='bfloat16', fuse=False, threads=2)"),
    "Network.fuse_into": Reader("net.fuse_into(targets, threads=2)", FUSE_INTO_TARGETS),
    "Network.state_dict": Reader("net.state_dict()"),
    "Network.state_dict(bn_eps=1e-3)": Reader("net.state_dict(bn_eps=1e-3)"),
    "Network.state_dict(fuse, HWIO, float16)": Reader(
        "net.state_dict(fuse=True, layout='HWIO', dtype='float16')"),
    # -- the writers
    "save": Reader("yolo_io.save('out.weights', net)"),
    "save(upto=2)": Reader("yolo_io.save('out.weights', net, upto=2)", intact=CONVS_INTACT),
    "save(header=(1001, 0, 0))": Reader("yolo_io.save('out.weights', net, header=(1001, 0, 0))"),
    "save(arrays)": Reader(
        "yolo_io.save('out.weights', {layer.index: dict(layer.params) for layer in net}, "
        "net.config)"),
    "save(state dict)": Reader("yolo_io.save('out.weights', net.state_dict(), net.config)"),
    "save_safetensors": Reader("yolo_io.save_safetensors('out.safetensors', net)"),
    "save_safetensors(naming=)": Reader(
        "yolo_io.save_safetensors('out.safetensors', net, naming='yolo_io')"),
    "save_safetensors(fuse=)": Reader(
        "yolo_io.save_safetensors('out.safetensors', net, fuse=True)"),
    "save_safetensors(dtype=)": Reader(
        "yolo_io.save_safetensors('out.safetensors', net, dtype='float16')"),
    "save_npz": Reader("yolo_io.save_npz('out.npz', net)"),
    "save_npz(fuse=True)": Reader("yolo_io.save_npz('out.npz', net, fuse=True)"),
    "save_fused": Reader("yolo_io.save_fused('fused.weights', 'fused.cfg', net)"),
    # -- the exporters and the checks
    "onnx.export": Reader("yolo_io.onnx.export('out.onnx', net)", "import yolo_io.onnx", "onnx"),
    "onnx.export(float16)": Reader("yolo_io.onnx.export('out.onnx', net, dtype='float16')",
                                   "import yolo_io.onnx", "onnx"),
    "verify": Reader("yolo_io._export.verify.verify(net)", "import yolo_io._export.verify", "cv2"),
    "doctor": Reader("yolo_io.doctor(net)"),
    "doctor plot": Reader("yolo_io._diagnosis.doctor.plot(net, 'out.png')", "import yolo_io._diagnosis.doctor",
                          "matplotlib"),
    # -- the adapters
    "torch.state_dict": Reader("yolo_io.torch.state_dict(net)", "import yolo_io.torch", "torch"),
    "torch.load_into": Reader("yolo_io.torch.load_into(m, net)", TORCH_MODEL + "m = model()",
                              "torch"),
    "torch.load_into(eps=1e-3)": Reader("yolo_io.torch.load_into(m, net)",
                                        TORCH_MODEL + "m = model(eps=1e-3)", "torch"),
    "torch.load_into(half)": Reader("yolo_io.torch.load_into(m, net)",
                                    TORCH_MODEL + "m = model().half()", "torch"),
    # Without the Linear, whose threaded pread would come first and raise.
    "torch.load_into(fuse=True)": Reader(
        "yolo_io.torch.load_into(m, net, fuse=True, strict=False)",
        TORCH_MODEL + "m = model(bn=False, head=False)", "torch", CONVS_INTACT),
    "keras.load_into": Reader("yolo_io.keras.load_into(m, net)", KERAS_MODEL + "m = model()",
                              "keras,torch"),
    "keras.load_into(fuse=True)": Reader("yolo_io.keras.load_into(m, net, fuse=True)",
                                         KERAS_MODEL + "m = model(bn=False)",
                                         "keras,torch"),
}

# name: the file's new size, an expression of the Network `net` (loaded
# before the shrink) and the file's size `size`.
SHRINKS: dict[str, str] = {
    "to zero": "0",
    "into the header": "10",
    "to just past the header": "net.header.size",
    "into the first layer's data": "net[0].offset + net[0].nbytes // 2",
    "into the last layer's data": "net[-1].offset + net[-1].nbytes // 2",
    "by one float": "size - 4",
}

CHILD = r'''
import json, os, sys, traceback
import yolo_io
from yolo_io.testing import write_weights

CFG, SETUP, CALL, SHRINKS = json.loads(sys.argv[1])


def run(net):
    scope = {"yolo_io": yolo_io, "net": net}
    exec(SETUP, scope)
    def call():
        exec(CALL, scope)
    return call


def outcome(call):
    try:
        call()
        return {"result": "ok"}
    except Exception as err:
        return {"result": type(err).__name__, "bases": [c.__name__ for c in type(err).__mro__],
                "message": str(err), "traceback": traceback.format_exc()}


for name, new_size in SHRINKS.items():
    folder = os.path.abspath(f"case{list(SHRINKS).index(name)}")
    os.mkdir(folder)
    os.chdir(folder)
    with open("model.cfg", "w") as f:
        f.write(CFG)
    write_weights("model.weights", "model.cfg", seed=1)
    size = os.path.getsize("model.weights")
    net = yolo_io.load("model.weights", "model.cfg")
    snapshot = yolo_io.load("model.weights", "model.cfg", copy=True)
    call, snapshot_call = run(net), run(snapshot)
    os.truncate("model.weights", eval(new_size, {"net": net, "size": size}))
    print(json.dumps({"shrink": name, "started": True}), flush=True)
    found = outcome(call)
    found["files"] = sorted(os.listdir("."))
    found["snapshot"] = outcome(snapshot_call)
    found["shrink"] = name
    print(json.dumps(found), flush=True)
    os.chdir("..")
'''


@pytest.mark.slow
@pytest.mark.parametrize("reader", READERS)
def test_a_reader_survives_a_file_that_shrank_after_load(tmp_path: Path, reader: str) -> None:
    call, setup, needs, intact = READERS[reader]
    for module in filter(None, needs.split(",")):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    env = dict(os.environ, KERAS_BACKEND="torch")
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps([CFG, setup, call, SHRINKS])],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    started = [line["shrink"] for line in lines if line.get("started")]
    # Under the sanitizer suite, AddressSanitizer reports a SIGBUS and aborts.
    assert proc.returncode != -signal.SIGBUS and "AddressSanitizer" not in proc.stderr, (
        f"{reader}: SIGBUS after the file shrank {started[-1] if started else '?'}")
    assert proc.returncode == 0, proc.stderr
    done = [line for line in lines if not line.get("started")]
    assert [line["shrink"] for line in done] == list(SHRINKS)
    for found in done:
        where = f"{reader}, the file shrunk {found['shrink']}: {found}"
        assert found["snapshot"]["result"] == "ok", where
        if found["shrink"] in intact:
            assert found["result"] == "ok", where
            continue
        assert "FormatError" in found.get("bases", []), where
        assert "model.weights" in found["message"], where
        assert re.search(r"layer \d+ \(\w+, model\.cfg line \d+\)", found["message"]), where
        # Nothing written: no output, no temporary file left behind.
        assert found["files"] == ["model.cfg", "model.weights"], where


# The fusion reads the file with pread(), not through the mapping (issue 27,
# item 8): a file that shrinks after the layers were planned, while the
# fusion runs with the GIL released, is a FormatError naming the layer, not a
# SIGBUS. The core's hook truncates the file between the plans and the
# first read, where checking the size beforehand cannot help.
DURING = {name: READERS[name] for name in (
    "Layer.fused", "Layer.fused(HWIO, float16, threads=2)", "Network.fused_all",
    "Network.fused_all(HWIO, bfloat16, fuse=False)", "Network.fuse_into",
    "Network.state_dict(fuse, HWIO, float16)", "save_fused")}
DURING_SHRINKS = ("to zero", "to just past the header", "into the first layer's data")


@pytest.mark.parametrize("reader", DURING)
def test_a_fusion_survives_a_file_that_shrinks_while_it_runs(tmp_path: Path, reader: str) -> None:
    call, setup, _, _ = DURING[reader]
    shrinks = {name: SHRINKS[name] for name in DURING_SHRINKS}
    # The child truncates nothing itself (its new size is the file's own):
    # the hook does, inside the core's next fusion call.
    hook = ("from yolo_io import _core\n"
            "_core._shrink_before_fusion_reads('model.weights', int(os.environ['YOLO_IO_SHRINK']))\n")
    child = CHILD.replace(
        "    os.truncate(\"model.weights\", eval(new_size, {\"net\": net, \"size\": size}))\n",
        "    os.environ['YOLO_IO_SHRINK'] = str(eval(new_size, {'net': net, 'size': size}))\n"
        "    exec(HOOK)\n").replace("CFG, SETUP, CALL, SHRINKS = json.loads(sys.argv[1])",
                               "CFG, SETUP, CALL, SHRINKS, HOOK = json.loads(sys.argv[1])")
    assert child != CHILD
    proc = subprocess.run([sys.executable, "-c", child, json.dumps([CFG, setup, call, shrinks, hook])],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode != -signal.SIGBUS and "AddressSanitizer" not in proc.stderr, (
        f"{reader}: SIGBUS after the file shrank during the fusion")
    assert proc.returncode == 0, proc.stderr
    done = [json.loads(line) for line in proc.stdout.splitlines()
            if line.startswith("{") and not json.loads(line).get("started")]
    assert [line["shrink"] for line in done] == list(shrinks)
    for found in done:
        where = f"{reader}, the file shrunk {found['shrink']} during the fusion: {found}"
        assert "FormatError" in found.get("bases", []), where
        assert "model.weights" in found["message"], where
        assert re.search(r"layer \d+ \(\w+, model\.cfg line \d+\)", found["message"]), where
