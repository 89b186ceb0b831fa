"""What ``torch.build`` and ``keras.build`` take: a loaded network (its
weights), or a cfg alone (a model to train from scratch)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .._model.config import Config, parse
from .._model.network import Network

Source = Network | Config | str | os.PathLike[str]
OUTPUTS = ("raw", "decoded")


def resolve(source: object, outputs: object, *, caller: str
            ) -> tuple[Config, Network | None, Literal["raw", "decoded"]]:
    """(config, network or None, outputs) of a build's arguments, refused with
    a TypeError or ValueError naming ``caller``'s argument."""
    if outputs not in OUTPUTS:
        raise ValueError(f"{caller}: outputs must be 'raw' or 'decoded', not {outputs!r}")
    if isinstance(source, Network):
        return source.config, source, outputs  # type: ignore[return-value]
    if isinstance(source, Config):
        return source, None, outputs  # type: ignore[return-value]
    if isinstance(source, (str, os.PathLike)):
        # Warnings (CfgWarning) at the line that called build().
        return parse(source, 3), None, outputs  # type: ignore[return-value]
    raise TypeError(f"{caller} takes a loaded Network, a Config or a cfg path, not "
                    f"{type(source).__name__}")


def owner_of_arrays(config: Config, index: int) -> int:
    """The layer whose arrays layer ``index`` computes with: its
    ``share_index`` (darknet's shared weights, as trident networks use them
    at several dilations), else itself."""
    share = config[index].share_index
    return index if share is None else share


def layer_arrays(net: Network | None, index: int) -> Mapping[str, npt.NDArray[np.float32]] | None:
    """The darknet arrays layer ``index`` computes with (a shared layer's
    owner's); None: no weights to assign, a cfg alone or a layer a partial
    file does not reach."""
    if net is None:
        return None
    index = owner_of_arrays(net.config, index)
    return net[index].params if index < net.covered_layers else None


def copy_array(a: Any) -> npt.NDArray[np.float32]:
    """A writable float32 copy (the network's arrays are read-only views)."""
    return np.array(a, dtype=np.float32, copy=True)
