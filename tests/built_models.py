"""What tests/test_torch_build.py and tests/test_keras_build.py share: the
comparison with onnxruntime on the ONNX export, and the small cfgs that cover
every lowered operation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

import yolo_io
from yolo_io.testing import write_weights

TOLERANCE = 1e-4  # of each output's largest magnitude


def assert_outputs_equal(want: Mapping[str, np.ndarray], got: Sequence[np.ndarray],
                         what: str = "") -> None:
    """``got`` (NCHW) equals onnxruntime's ``want`` within TOLERANCE of each
    output's largest finite magnitude, infinite exactly where it is."""
    for name, out, ref in zip(want, got, want.values(), strict=True):
        assert out.shape == ref.shape, (what, name)
        finite = np.isfinite(ref)
        np.testing.assert_array_equal(np.isfinite(out), finite, err_msg=f"{what} {name}")
        scale = float(np.abs(ref[finite]).max(initial=0)) or 1.0
        err = float(np.abs(out[finite] - ref[finite]).max(initial=0)) / scale
        assert err <= TOLERANCE, f"{what} {name}: {err:.2e} of its largest magnitude {scale:.3g}"


def load(tmp_path: Path, text: str, name: str = "m") -> yolo_io.Network:
    """A network of the cfg ``text`` with realistic weights."""
    cfg = tmp_path / f"{name}.cfg"
    cfg.write_text(text)
    return yolo_io.load(write_weights(tmp_path / f"{name}.weights", cfg, realistic=True), cfg)


def activation_cfg(activation: str) -> str:
    """A conv of ``activation`` on inputs spread over about -10..10, then an
    [activation] layer (of leaky where darknet computes ``activation`` only in
    convs and shortcuts)."""
    plain = "leaky" if activation in ("swish", "mish", "hard_mish") else activation
    return ("[net]\nwidth=8\nheight=8\nchannels=3\n\n[convolutional]\nfilters=8\n"
            "size=1\nactivation=linear\n\n[upsample]\nstride=1\nscale=8\n\n"
            f"[convolutional]\nfilters=4\nsize=3\npad=1\nactivation={activation}\n"
            f"\n[activation]\nactivation={plain}\n")


# Padding beyond the kernel, a weighted shortcut per channel under softmax,
# a local layer.
PADDED_CFG = ("[net]\nwidth=7\nheight=7\nchannels=3\n\n[convolutional]\nfilters=4\n"
              "size=1\nactivation=linear\n\n[convolutional]\nfilters=6\nsize=1\n"
              "activation=linear\n\n[shortcut]\nfrom=-2\nweights_type=per_channel\n"
              "weights_normalization=softmax\nactivation=linear\n\n[local_avgpool]\nsize=3\n"
              "stride=1\npadding=2\n\n[local]\nfilters=3\nsize=3\nstride=1\npad=1\n"
              "activation=leaky\n\n[maxpool]\nsize=2\nstride=2\npadding=5\n")

HEAD_NET = ("[net]\nwidth=16\nheight=16\nchannels=3\n\n[convolutional]\nbatch_normalize=1\n"
            "filters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n\n")
HEADS = {
    "yolo": ("[convolutional]\nfilters=21\nsize=1\nactivation=linear\n\n[yolo]\nmask=0,1,2\n"
             "anchors=4,5, 8,9, 12,10\nclasses=2\nnum=3\nscale_x_y=1.05\n"),
    "yolo new_coords": ("[convolutional]\nfilters=21\nsize=1\nactivation=logistic\n\n[yolo]\n"
                        "mask=0,1,2\nanchors=4,5, 8,9, 12,10\nclasses=2\nnum=3\nnew_coords=1\n"
                        "scale_x_y=2\n"),
    "Gaussian_yolo": ("[convolutional]\nfilters=33\nsize=1\nactivation=linear\n\n"
                      "[Gaussian_yolo]\nmask=0,1,2\nanchors=4,5, 8,9, 12,10\nclasses=2\nnum=3\n"
                      "yolo_point=left_top\n"),
    "region": ("[convolutional]\nfilters=14\nsize=1\nactivation=linear\n\n[region]\n"
               "anchors=1,2, 3,4\nclasses=2\nnum=2\ncoords=4\nsoftmax=1\n"),
    "detection": ("[connected]\noutput=192\nactivation=linear\n\n[detection]\nclasses=2\n"
                  "coords=4\nside=4\nnum=2\nsoftmax=1\nsqrt=1\n"),
}
