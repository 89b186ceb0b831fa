"""OpenCV's Darknet importer as an independent oracle: for every corpus cfg it
loads, every convolutional layer's raw arrays from yolo_io are bitwise equal to
the blobs OpenCV read from the same file.

How OpenCV keeps what it read (opencv modules/dnn/src/darknet/darknet_io.cpp,
checked by experiment with opencv-python-headless 4.14): a conv without BN holds
[weights (n, c/groups, k, k), biases (1, n)]; with BN the conv holds [weights]
and the next OpenCV layer holds [rolling_mean, rolling_variance, scales, biases]
(each (1, n)). Values are the file bytes verbatim. OpenCV attaches blobs by
position in its layer list: +1 per darknet layer, +1 for BN, +1 for the permute
before [yolo]/[region], +1 for any activation other than linear; the names it
gives layers drift from darknet's indices, so positions are replayed here.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import corpus_param

import yolo_io
from yolo_io.testing import write_weights

cv2 = pytest.importorskip("cv2", reason="opencv-python-headless<5 is not installed")
if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromDarknet"):  # pragma: no cover
    pytest.skip("this OpenCV has no Darknet importer (removed in 5.x)", allow_module_level=True)

# Cfgs OpenCV's importer refuses (unknown sections or activations): OpenCV
# cannot be the oracle there, and the test checks that it does refuse them.
OPENCV_REJECTS = {
    "AlexeyAB-rnn.train.cfg", "crnn.train.cfg", "lstm.train.cfg",       # [rnn] [crnn] [lstm]
    "Gaussian_yolov3_BDD.cfg",                                         # [Gaussian_yolo]
    "efficientnet-lite3.cfg",                                          # relu6
    "xyolo.test.cfg",                                                  # [batchnorm]
    "yolov1.cfg",                                                      # [local]
    "yolov4-sam-mish-csp-reorg-bfm.cfg",                               # [reorg3d]
    "yolov4-tiny_contrastive.cfg",                                     # [local_avgpool]
    "yolor_csp.cfg",                                                   # not darknet
}
# OpenCV loads this one but reads a full conv for each share_index layer (which
# stores nothing), so its arrays are shifted from the first such layer on.
OPENCV_SHARE_INDEX_BUG = "resnet152_trident.cfg"


def opencv_arrays(net: object, cfg: yolo_io.Config, stop: int) -> dict[int, dict[str, np.ndarray]]:
    """Raw conv/connected arrays of darknet layers 0..stop-1 as OpenCV holds them."""
    names = list(net.getLayerNames())  # type: ignore[attr-defined]
    out: dict[int, dict[str, np.ndarray]] = {}
    pos = -1
    for layer in cfg[:stop]:
        pos += 1
        if layer.type in ("convolutional", "connected"):
            main = [np.asarray(b) for b in net.getLayer(names[pos]).blobs]  # type: ignore[attr-defined]
            if "scales" in layer.param_shapes:
                pos += 1
                mean, var, scales, biases = (np.asarray(b).ravel() for b in net.getLayer(names[pos]).blobs)  # type: ignore[attr-defined]
                out[layer.index] = {"biases": biases, "scales": scales, "rolling_mean": mean,
                                    "rolling_variance": var, "weights": main[0]}
            else:
                out[layer.index] = {"biases": main[1].ravel(), "weights": main[0]}
        if layer.type in ("yolo", "region"):
            pos += 1
        if layer.options.get("activation", "linear") != "linear":
            pos += 1
    return out


def assert_bitwise(a: np.ndarray, b: np.ndarray, where: str) -> None:
    assert a.dtype == b.dtype == np.float32, where
    assert a.shape == b.shape, where
    assert a.tobytes() == b.tobytes(), where


@pytest.mark.slow
@pytest.mark.parametrize("path", corpus_param())
def test_conv_arrays_bitwise_equal_opencv(tmp_path: Path, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.CfgWarning)
        if path.name == "yolor_csp.cfg":
            with pytest.raises(yolo_io.CfgError):
                yolo_io.parse_cfg(path)
            cfg = None
        else:
            cfg = yolo_io.parse_cfg(path)
    if path.name in OPENCV_REJECTS:
        with pytest.raises(cv2.error):
            cv2.dnn.readNetFromDarknet(str(path))
        return
    assert cfg is not None
    weights = write_weights(tmp_path / "w.weights", cfg, seed=11)
    stop = len(cfg)
    if path.name == OPENCV_SHARE_INDEX_BUG:
        stop = next(layer.index for layer in cfg if layer.share_index is not None)
    ocv = opencv_arrays(cv2.dnn.readNetFromDarknet(str(path), str(weights)), cfg, stop)
    net = yolo_io.load(weights, cfg)
    compared = 0
    for layer in net[:stop]:
        if layer.type != "convolutional":
            continue
        ours = layer.params
        theirs = ocv[layer.index]
        assert sorted(ours) == sorted(theirs), layer
        for name, arr in ours.items():
            assert_bitwise(arr, theirs[name], f"layer {layer.index} {name}")
        compared += 1
    assert compared > 0
    if path.name == "pjreddie-alexnet.cfg":  # its three [connected] layers too
        for layer in net:
            if layer.type == "connected":
                for name, arr in layer.params.items():
                    assert_bitwise(arr, ocv[layer.index][name], f"layer {layer.index} {name}")
    net.close()
    weights.unlink()
