"""``yolo_io.torch.build``: a PyTorch module computing a darknet network, emitted
from the shared lowering (:mod:`yolo_io._lowering`): one small PyTorch
function per lowered operation, darknet's semantics written once there.

Parameters are named as the ``"yolo_io"`` state-dict naming names them
(``layers.{i}.conv.weight``, ``layers.{i}.bn.*``, ``layers.{i}.linear.*``,
darknet's names for the rest), so ``yolo_io.save(path, model.state_dict(),
cfg)`` writes the model back as darknet weights. Batch norm stays a
``BatchNorm2d`` with darknet's epsilon and momentum, so the model trains.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from .._lowering import lower
from .source import Source, resolve

if TYPE_CHECKING:
    import torch

__all__ = ["build"]


def build(source: Source, *, outputs: Literal["raw", "decoded"] = "raw") -> torch.nn.Module:
    """A ``torch.nn.Module`` that computes ``source``'s network as darknet does.

    Args:
        source: a loaded :class:`~yolo_io.Network` (its weights assigned,
            unfused: batch norm stays ``BatchNorm2d`` with darknet's epsilon,
            so the model can be fine-tuned; a partial file such as
            ``yolov4.conv.137`` assigns the layers it holds and initialises
            the rest as from a cfg), or a :class:`~yolo_io.Config` or cfg path
            (PyTorch's default initialisation, to train from scratch).
        outputs: ``"raw"``: each head's input, in layer order (a classifier:
            its last layer's output), the tensors the ONNX export's raw
            outputs are; ``"decoded"``: ``(boxes, objectness, scores)`` as
            the ONNX export's ``outputs="decoded"``.

    Returns:
        The module. Its input is ``(N, C, H, W)``, RGB in [0, 1] at the cfg's
        size, as darknet's. ``forward`` returns one tensor when the model has
        one output, else a tuple, named by ``model.output_names``. It works in
        ``train()`` and ``eval()``, with ``torch.jit.trace`` and
        ``torch.export.export``, on any device and floating dtype it is moved
        to; ``model.state_dict()`` goes back through :func:`yolo_io.save`.

    Raises:
        ConversionError: a layer, option or activation with no faithful
            model, naming the layer and its cfg line.
        ImportError: PyTorch is missing.
    """
    try:
        import torch  # noqa: F401
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("yolo_io.torch.build needs PyTorch: pip install torch") from err
    config, net, kind = resolve(source, outputs, caller="yolo_io.torch.build")
    graph = lower(config, outputs=kind)
    from .torch_model import DarknetModel

    return DarknetModel(graph, config, net)
