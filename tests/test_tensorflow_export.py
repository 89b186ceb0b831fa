"""TensorFlow SavedModel and TFLite exports (issue 24): yolo_io.keras.build on
Keras' TensorFlow backend, written by Keras' own model.export() and
TensorFlow's TFLite converter, against onnxruntime on the ONNX export.

TensorFlow runs in a child process: Keras picks its backend once per process,
and the rest of the suite runs Keras on torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_CFG
from opencv_oracle import natural_image

import yolo_io
import yolo_io.keras
from yolo_io.testing import write_weights

RELATIVE = 1e-4  # float32, of each output's largest magnitude

CHILD = r"""
import json, sys
import numpy as np
import tensorflow as tf
import yolo_io, yolo_io.keras

weights, cfg, x_path, saved, tflite = sys.argv[1:]
net = yolo_io.load(weights, cfg)
x = np.load(x_path).transpose(0, 2, 3, 1)
out = {}
yolo_io.keras.export(saved, net)
loaded = tf.saved_model.load(saved)
result = loaded.signatures["serving_default"](input=tf.constant(x))
out["saved_model"] = {k: np.asarray(v).tolist() for k, v in result.items()}
runner = tf.lite.Interpreter(model_path=tflite).get_signature_runner()
out["tflite_inputs"] = list(runner.get_input_details())
out["tflite"] = {k: np.asarray(v).tolist() for k, v in runner(input=x).items()}
json.dump(out, sys.stdout)
"""


def env() -> dict[str, str]:
    return dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3",
                PYTHONWARNINGS="ignore")


@pytest.mark.slow
def test_saved_model_and_tflite_equal_onnx(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed (the tensorflow extra)")
    ort = pytest.importorskip("onnxruntime")
    import yolo_io.onnx

    cfg = SHARED_CFG / "yolov4-tiny.cfg"
    if not cfg.is_file():
        pytest.skip(f"{cfg} is not there (the real-cfg corpus lives beside the checkout in CI)")
    weights = write_weights(tmp_path / "t.weights", cfg, realistic=True)
    net = yolo_io.load(weights, cfg)
    x = natural_image(*net.input_shape)
    np.save(tmp_path / "x.npy", x)
    session = ort.InferenceSession(yolo_io.onnx.export(None, net).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    want = session.run(None, {"input": x})
    # The TFLite file through the command line, the SavedModel through the API.
    cli = subprocess.run([sys.executable, "-m", "yolo_io", "export", str(cfg), str(weights),
                          "-o", str(tmp_path / "m.tflite"), "--json"],
                         capture_output=True, text=True, env=env(), check=False)
    assert cli.returncode == 0, cli.stderr
    report = json.loads(cli.stdout)
    assert report["format"] == "tflite" and report["outputs"] == ["head_30", "head_37"]
    child = subprocess.run([sys.executable, "-c", CHILD, str(weights), str(cfg),
                            str(tmp_path / "x.npy"), str(tmp_path / "saved"),
                            str(tmp_path / "m.tflite")],
                           capture_output=True, text=True, env=env(), check=False)
    assert child.returncode == 0, child.stderr[-3000:]
    got = json.loads(child.stdout)
    assert (tmp_path / "saved" / "saved_model.pb").is_file()
    assert got["tflite_inputs"] == ["input"]
    for fmt in ("saved_model", "tflite"):
        assert sorted(got[fmt]) == ["head_30", "head_37"], fmt
        for name, ref in zip(("head_30", "head_37"), want, strict=True):
            a = np.asarray(got[fmt][name], np.float32).transpose(0, 3, 1, 2)
            assert a.shape == ref.shape, (fmt, name)
            err = float(np.abs(a - ref).max() / np.abs(ref).max())
            assert err <= RELATIVE, f"{fmt} {name}: {err:.2e} of its largest magnitude"


MODES_CHILD = r"""
import json, os, stat, sys
from pathlib import Path
import yolo_io, yolo_io.keras

weights, cfg, folder = sys.argv[1:]
net = yolo_io.load(weights, cfg)
os.umask(0o077)
folder = Path(folder)
out = {}
new = folder / "new.tflite"
yolo_io.keras.export(new, net, format="tflite")
out["new tflite"] = oct(stat.S_IMODE(new.stat().st_mode))
for mode in (0o640, 0o6755):
    old = folder / f"old{mode:o}.tflite"
    old.write_bytes(b"old")
    os.chmod(old, mode)
    yolo_io.keras.export(old, net, format="tflite")
    out[f"replaced {mode:o} tflite"] = oct(stat.S_IMODE(old.stat().st_mode))
saved = folder / "saved"
yolo_io.keras.export(saved, net)
out["saved_model"] = sorted({oct(stat.S_IMODE(p.stat().st_mode)) for p in saved.rglob("*")}
                            | {oct(stat.S_IMODE(saved.stat().st_mode))})
yolo_io.keras.export(saved, net)  # an earlier SavedModel is replaced
out["left"] = sorted(p.name for p in folder.iterdir())
print(json.dumps(out))
"""


@pytest.mark.slow
def test_modes_and_replacement_under_umask_077(tmp_path: Path, tiny_cfg: Path) -> None:
    """What test_file_modes.py checks of every other writer: a new file gets
    0666 minus the umask, a replaced .tflite keeps its mode without setuid;
    a SavedModel's files and folders get the umask; nothing is left behind."""
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed (the tensorflow extra)")
    weights = write_weights(tmp_path / "t.weights", tiny_cfg)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    child = subprocess.run([sys.executable, "-c", MODES_CHILD, str(weights), str(tiny_cfg),
                            str(out_dir)], capture_output=True, text=True, env=env(), check=False)
    assert child.returncode == 0, child.stderr[-3000:]
    got = json.loads(child.stdout.strip().splitlines()[-1])
    assert got["new tflite"] == "0o600"
    assert got["replaced 640 tflite"] == "0o640" and got["replaced 6755 tflite"] == "0o755"
    assert set(got["saved_model"]) <= {"0o600", "0o700"}, got["saved_model"]
    assert got["left"] == ["new.tflite", "old640.tflite", "old6755.tflite", "saved"]


@pytest.mark.parametrize(("args", "message"), [
    (["-o", "m.onnx", "--format", "tflite", "--opset", "18"], "--opset apply to an ONNX export"),
    (["-o", "m.tflite", "--intermediates"], "--intermediates apply to an ONNX export, not tflite"),
    (["-o", "saved", "--outputs", "nms"], "--outputs nms apply to an ONNX export, not saved_model"),
    (["-o", "m.pb"], "a .pb file is no format `export` knows"),
])
def test_format_usage_errors(tmp_path: Path, tiny_cfg: Path, args: list[str], message: str
                             ) -> None:
    weights = write_weights(tmp_path / "t.weights", tiny_cfg)
    result = subprocess.run([sys.executable, "-m", "yolo_io", "export", str(tiny_cfg),
                             str(weights), *args], capture_output=True, text=True,
                            cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.weights", "tiny.cfg"]


def test_a_folder_that_is_not_a_saved_model_is_not_replaced(tmp_path: Path,
                                                            tiny_cfg: Path) -> None:
    weights = write_weights(tmp_path / "t.weights", tiny_cfg)
    keep = tmp_path / "photos"
    keep.mkdir()
    (keep / "a.jpg").write_bytes(b"x")
    result = subprocess.run([sys.executable, "-m", "yolo_io", "export", str(tiny_cfg),
                             str(weights), "-o", str(keep), "--format", "saved_model"],
                            capture_output=True, text=True, env=env(), check=False)
    assert result.returncode == 2, result.stderr
    assert "is not a SavedModel folder" in result.stderr
    assert [p.name for p in keep.iterdir()] == ["a.jpg"]


def test_the_weights_are_not_replaced_by_a_tflite_export(tmp_path: Path, tiny_cfg: Path) -> None:
    weights = write_weights(tmp_path / "t.weights", tiny_cfg)
    before = weights.read_bytes()
    result = subprocess.run([sys.executable, "-m", "yolo_io", "export", str(tiny_cfg),
                             str(weights), "-o", str(weights), "--format", "tflite"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "input WEIGHTS" in result.stderr, result.stderr
    assert weights.read_bytes() == before
    with pytest.raises(yolo_io.OutputIsInputError):
        yolo_io.keras.export(weights, yolo_io.load(weights, tiny_cfg), format="tflite")


def fake_saved_model(folder: Path) -> Path:
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"pb")
    (folder / "variables" / "variables.index").write_bytes(b"index")
    return folder


def test_a_saved_model_folder_holding_more_is_not_replaced(tmp_path: Path,
                                                           tiny_cfg: Path) -> None:
    """A SavedModel folder with anything else in it (labels, the cfg and
    weights kept beside the model) is refused before TensorFlow runs, and an
    input inside it is named as the input."""
    saved = fake_saved_model(tmp_path / "sm")
    (saved / "labels.txt").write_text("person\n")
    weights = write_weights(tmp_path / "t.weights", tiny_cfg)
    net = yolo_io.load(weights, tiny_cfg)
    with pytest.raises(FileExistsError, match=r"holds files a SavedModel does not \(labels.txt\)"):
        yolo_io.keras.export(saved, net)
    (saved / "labels.txt").unlink()
    inside = saved / "variables" / "model.weights"
    inside.write_bytes(weights.read_bytes())
    moved = yolo_io.load(inside, tiny_cfg)
    with pytest.raises(yolo_io.OutputIsInputError, match=r"model\.weights is the network's "
                                                         r"weights file"):
        yolo_io.keras.export(saved, moved)
    assert sorted(p.name for p in saved.rglob("*")) == [
        "model.weights", "saved_model.pb", "variables", "variables.index"]
    result = subprocess.run([sys.executable, "-m", "yolo_io", "export", str(tiny_cfg),
                             str(weights), "-o", str(tmp_path / "m.tflite") + "/"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 3, result.stderr
    assert "a name ending in / names a folder" in result.stderr
    assert not (tmp_path / "m.tflite").exists()
