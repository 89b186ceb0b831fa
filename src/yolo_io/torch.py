"""PyTorch helpers (needs ``torch``, an optional dependency).

>>> import yolo_io, yolo_io.torch
>>> net = yolo_io.load("yolov4.weights", "yolov4.cfg")
>>> model.load_state_dict(yolo_io.torch.state_dict(net, naming="darknet2pytorch"))
>>> yolo_io.torch.load_into(my_model, net)        # any nn.Module: paired by structure
>>> model = yolo_io.torch.build(net)              # or the model itself, built from the cfg

The implementation is in ``yolo_io._frameworks`` (see docs/state-dicts.md).
"""

from __future__ import annotations

from ._base.errors import ModelMismatchError
from ._frameworks.pairing import Pairing
from ._frameworks.torch import check_model, load_into, state_dict
from ._frameworks.torch_build import build

__all__ = ["ModelMismatchError", "Pairing", "build", "check_model", "load_into", "state_dict"]
