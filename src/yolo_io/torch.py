"""PyTorch helpers (needs ``torch``, an optional dependency).

>>> import yolo_io, yolo_io.torch
>>> net = yolo_io.load("yolov4.weights", "yolov4.cfg")
>>> model.load_state_dict(yolo_io.torch.state_dict(net, naming="darknet2pytorch"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from ._network import Network


def state_dict(net: Network, **kwargs: Any) -> dict[str, torch.Tensor]:
    """:meth:`Network.state_dict` as torch tensors that share memory with it:
    no copy beyond the one arena of fused/transposed weights.

    Keyword arguments are those of :meth:`Network.state_dict` (``fuse``,
    ``layout``, ``naming``, ``dense_layout``, ``bn_eps``, ``threads``).

    Raises:
        ImportError: torch is not installed.
    """
    try:
        import torch
    except ImportError as err:
        raise ImportError("yolo_io.torch needs PyTorch: python -m pip install torch") from err
    return {key: torch.from_numpy(array) for key, array in net.state_dict(**kwargs).items()}
