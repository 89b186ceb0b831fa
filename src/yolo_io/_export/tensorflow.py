"""TensorFlow SavedModel and TFLite exports: :func:`yolo_io.keras.build` on
Keras' TensorFlow backend, written with Keras' own ``model.export()`` (and
TensorFlow's TFLite converter from that SavedModel). Needs the ``tensorflow``
extra (TensorFlow CPU).
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Literal

from .._base.errors import ConversionError
from .._base.paths import PathArg, fs_path
from .._frameworks.keras_build import build
from .._frameworks.source import OUTPUTS
from .._model.network import Network
from .._writing.atomic import (
    atomic_file,
    network_inputs,
    refuse_inputs,
    replace_folder,
    resolve_target,
)

__all__ = ["FORMATS", "export"]

FORMATS = ("saved_model", "tflite")


def _tensorflow_keras() -> tuple[Any, Any]:
    """(tensorflow, keras) with Keras on the TensorFlow backend, or an error
    saying how to get there."""
    if "keras" not in sys.modules:
        backend = os.environ.get("KERAS_BACKEND", "tensorflow")
        if backend != "tensorflow":
            raise RuntimeError(f"a TensorFlow export needs Keras on the TensorFlow backend; "
                               f"KERAS_BACKEND is {backend!r}: set KERAS_BACKEND=tensorflow "
                               "(before Keras is imported)")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ chatter
    try:
        import tensorflow as tf
    except ImportError as err:
        raise ImportError("a TensorFlow export needs TensorFlow: pip install "
                          "'yolo_io[tensorflow]'") from err
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"a TensorFlow export needs Keras on the TensorFlow backend, and "
                           f"this process's Keras runs on {keras.backend.backend()!r}: set "
                           "KERAS_BACKEND=tensorflow before Keras is imported")
    return tf, keras


#: What a SavedModel folder holds (Keras' export, TensorFlow's writer).
SAVED_MODEL_ENTRIES = frozenset({"saved_model.pb", "variables", "assets", "fingerprint.pb",
                                 "keras_metadata.pb"})


def _check_replaceable(target: Path, inputs: list[tuple[str, str]]) -> None:
    """An existing output folder is replaced only if it is a SavedModel and
    nothing else: no link, no other file (a cfg, weights, labels kept beside
    the model would go with it), and none of the network's files inside."""
    if target.is_symlink() or not target.is_dir() or not (target / "saved_model.pb").is_file():
        raise FileExistsError(errno.EEXIST, "exists and is not a SavedModel folder: not "
                              "replaced", str(target))
    inside = [p for p in target.rglob("*") if p.is_file()]
    for _, given in inputs:
        try:
            given_stat = os.stat(given)
        except OSError:
            continue
        for p in inside:
            if os.path.samestat(given_stat, p.stat()):
                refuse_inputs(p, inputs)  # raises OutputIsInputError naming the input
    others = sorted(p.name for p in target.iterdir() if p.name not in SAVED_MODEL_ENTRIES)
    if others:
        raise FileExistsError(errno.EEXIST, f"holds files a SavedModel does not ({', '.join(others[:3])}"
                              f"{', ...' if len(others) > 3 else ''}): not replaced", str(target))


def export(path: PathArg, net: Network, *,
           format: Literal["saved_model", "tflite"] = "saved_model",
           outputs: Literal["raw", "decoded"] = "raw") -> Path:
    """Write ``net`` as a TensorFlow SavedModel (a folder) or a TFLite file.

    Args:
        path: the SavedModel folder or the ``.tflite`` file. A TFLite file is
            written atomically (a temporary file beside it, then a rename);
            a SavedModel is built in a temporary folder beside ``path`` and
            renamed into place, replacing an earlier SavedModel there (a
            folder holding anything else, a file or a link is refused with
            FileExistsError). One of the network's files, as the output or
            inside the folder replaced, is refused with OutputIsInputError.
        net: a loaded network.
        format: ``"saved_model"`` or ``"tflite"``.
        outputs: as :func:`yolo_io.keras.build`'s.

    Returns:
        The path written. Its serving signature (``serving_default``; in a
        TFLite file, the signature runner's) takes ``input``, ``(N, H, W, C)``
        float32, RGB in [0, 1], channels last, and gives
        :func:`yolo_io.keras.build`'s outputs by name (``head_{i}``, or
        ``boxes``, ``objectness``, ``scores``; ``output`` for a classifier).

    Raises:
        ConversionError: what no model expresses, naming the layer and line.
        RuntimeError: Keras already imported on another backend.
        ImportError: TensorFlow is missing.
    """
    if not isinstance(net, Network):
        raise TypeError(f"export(path, net) takes a Network, not {type(net).__name__}")
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {format!r}")
    if not isinstance(path, (str, bytes, os.PathLike)) or not fs_path(path):
        raise FileNotFoundError(errno.ENOENT, "no file name", str(path))
    if net.partial:
        raise ConversionError(f"{net.path} holds only the first {net.covered_layers} of "
                              f"{len(net)} layers: an export needs them all")
    if outputs not in OUTPUTS:
        raise ValueError(f"outputs must be 'raw' or 'decoded', not {outputs!r}")
    inputs = network_inputs(net)
    refuse_inputs(path, inputs)
    if format == "tflite":
        target = Path(resolve_target(fs_path(path)))
    else:
        target = Path(os.path.abspath(fs_path(path)))
        if os.path.lexists(target):
            _check_replaceable(target, inputs)
    if not target.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(target))
    tf, keras = _tensorflow_keras()
    model = build(net, outputs=outputs)
    names = list(model.output_names)

    def serve(x: Any) -> dict[str, Any]:  # outputs by name, not output_0, output_1, ...
        out = model(x, training=False)
        return dict(zip(names, out if isinstance(out, (list, tuple)) else [out], strict=True))

    c, h, w = net.input_shape
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serve", fn=serve, input_signature=[
        tf.TensorSpec((None, h, w, c), tf.float32, name="input")])
    try:
        scratch = tempfile.TemporaryDirectory(prefix=".yolo_io-", dir=target.parent)
    except OSError as err:  # a read-only or special folder: named as the output's
        raise type(err)(err.errno, f"cannot write beside it ({err.strerror})",
                        str(target)) from err
    with scratch as tmp:
        saved = Path(tmp) / "saved_model"
        archive.write_out(str(saved), verbose=False)
        if format == "tflite":
            converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
            flat = converter.convert()
            with atomic_file(str(target)) as out:
                out.write(flat)
            return target
        # An earlier SavedModel goes into the temporary folder, removed with it.
        replace_folder(str(saved), str(target), str(Path(tmp) / "replaced"))
    return target
