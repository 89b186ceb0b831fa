"""Darknet's layers lowered once into framework-neutral operations, from which
the ONNX export, the PyTorch module and the Keras model are all emitted
(docs/architecture.md)."""

from . import ops
from .darknet import head_output_names, lower
from .graph import INPUT, Graph, Node, Output

__all__ = ["INPUT", "Graph", "Node", "Output", "head_output_names", "lower",
           "ops"]
