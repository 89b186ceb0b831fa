"""Keras 3 helpers (needs ``keras``, an optional dependency; any backend, and
``tf.keras`` where TensorFlow's Keras is Keras 3).

>>> import yolo_io, yolo_io.keras
>>> net = yolo_io.load("yolov4-tiny.weights", "yolov4-tiny.cfg")
>>> yolo_io.keras.load_into(model, net)     # a hand-written Keras YOLO: paired by structure
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._base.errors import ConversionError, ModelMismatchError
from .._model.fusion import bn_for_eps, fold_bn
from .._model.network import layer_fused
from .pairing import Model, Node, Pairing, Part, bn_past_partial_end, pair

if TYPE_CHECKING:
    from .._model.config import Config
    from .._model.network import Layer, Network

__all__ = ["check_model", "load_into"]

# A Concatenate on these axes joins channels (NHWC, NCHW tensors): a "concat"
# node. Every other operation of several inputs (Add, Multiply, ...) is a
# "combine".
_CHANNEL_AXES = {"channels_last": (-1, 3), "channels_first": (1, -3)}


def _keras() -> Any:
    try:
        import keras
    except ImportError as err:
        raise ImportError(
            "yolo_io.keras needs Keras 3: python -m pip install keras (with a backend: "
            "KERAS_BACKEND=torch, jax or tensorflow)") from err
    return keras


def _children(layer: Any) -> list[Any]:
    return list(layer._flatten_layers(include_self=False, recursive=False))


def _own_weights(layer: Any) -> list[Any]:
    """A layer's weights that none of its sublayers holds."""
    inner = {id(w) for child in _children(layer) for w in child.weights}
    return [w for w in layer.weights if id(w) not in inner]


def _leaves(model: Any) -> list[Any]:
    """The layers that hold parameters of their own, depth first in each
    layer's own order (``_flatten_layers(recursive=True)`` lists each layer's
    children in reverse), each once: layers without sublayers, and custom
    layers that hold weights besides their sublayers'."""
    out: list[Any] = []
    seen: set[int] = set()
    stack = list(reversed(_children(model)))
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        children = _children(layer)
        if not children:
            out.append(layer)
            continue
        if _own_weights(layer):
            out.append(layer)  # refused by the pairing: no darknet layer is of its kind
        stack.extend(reversed(children))
    return out


def _part(layer: Any, keras: Any) -> Part | None:
    L = keras.layers
    if not layer.weights:
        return None
    children = _children(layer)
    # A custom layer's own weights, beside its sublayers'.
    weights = _own_weights(layer) if children else layer.weights
    shapes = {w.path.rpartition("/")[2]: tuple(int(n) for n in w.shape) for w in weights}
    if children:
        return Part(layer.name, type(layer).__name__, None, shapes, obj=layer)
    name = layer.name
    kind = type(layer).__name__
    if isinstance(layer, L.DepthwiseConv2D):
        kh, kw, cin, mult = shapes["kernel"]
        return Part(name, kind, ("conv", cin, cin * mult, kh, kw, cin), shapes,
                    bias=bool(layer.use_bias), obj=layer, stride=tuple(layer.strides),
                    dilation=tuple(layer.dilation_rate), padding=_padding(layer, kh, kw))
    if isinstance(layer, L.Conv2D) and not isinstance(layer, (L.Conv2DTranspose,
                                                                L.SeparableConv2D)):
        kh, kw, in_g, out = shapes["kernel"]
        groups = int(getattr(layer, "groups", 1))
        return Part(name, kind, ("conv", in_g * groups, out, kh, kw, groups), shapes,
                    bias=bool(layer.use_bias), obj=layer, stride=tuple(layer.strides),
                    dilation=tuple(layer.dilation_rate), padding=_padding(layer, kh, kw))
    if isinstance(layer, L.Dense):
        inp, out = shapes["kernel"]
        return Part(name, kind, ("dense", inp, out), shapes, bias=bool(layer.use_bias), obj=layer)
    if isinstance(layer, L.BatchNormalization):
        channels = shapes["moving_mean"][0]
        return Part(name, kind, ("bn", channels), shapes, eps=float(layer.epsilon),
                    affine=bool(layer.center and layer.scale), obj=layer)
    return Part(name, kind, None, shapes, obj=layer)


def _padding(layer: Any, kh: int, kw: int) -> Any:
    """A conv's padding (top, bottom, left, right) for an input of (h, w):
    ``"same"`` as TensorFlow (and Keras on every backend) pads, the odd pixel
    after, by an amount that depends on the input size and the stride."""
    if layer.padding != "same":
        return lambda h, w: (0, 0, 0, 0)
    (sy, sx), (dy, dx) = layer.strides, layer.dilation_rate

    def same(size: int, k: int, s: int, d: int) -> tuple[int, int]:
        total = max((-(-size // s) - 1) * s + d * (k - 1) + 1 - size, 0)
        return total // 2, total - total // 2

    return lambda h, w: (*same(h, kh, sy, dy), *same(w, kw, sx, dx))


def _expected_shapes(part: Part, sig: tuple[Any, ...]) -> dict[str, tuple[int, ...]]:
    if sig[0] == "conv":
        _, cin, cout, kh, kw, g = sig
        out: dict[str, tuple[int, ...]]
        if part.type_name == "DepthwiseConv2D" and g == cin:
            out = {"kernel": (kh, kw, cin, cout // max(1, cin))}
        else:
            out = {"kernel": (kh, kw, cin // g, cout)}
    elif sig[0] == "dense":
        out = {"kernel": (sig[1], sig[2])}
    else:
        return {k: (sig[1],) for k in ("gamma", "beta", "moving_mean", "moving_variance")}
    if part.bias:
        out["bias"] = (sig[2],)
    return out


def _functional(op: Any) -> Any:
    inner = getattr(op, "_functional", None)  # a built Sequential
    if inner is not None:
        return inner
    return op if hasattr(op, "_nodes_by_depth") else None


def _graph(model: Any, parts: list[Part], keras: Any, config: Config, notes: list[str],
           trace: bool | None) -> list[Node] | None:
    """Keras' functional graph as Nodes (nested models inlined, custom layers
    that hold other layers traced); a subclassed model's call() traced on a
    symbolic input of the cfg's shape. None (the reason in ``notes``) when
    that call fails (``trace=True``: ConversionError) or ``trace=False``."""
    fn = _functional(model)
    layout = _layout(model, keras)
    walker = _Walker({id(p.obj): k for k, p in enumerate(parts)}, keras, _CHANNEL_AXES[layout])
    if fn is None and trace is False:
        notes.append("trace=False: its data flow (what feeds each layer, the order of a "
                     "route's inputs) was not checked, only the shapes in the order of its "
                     "layers")
        return None
    if fn is None:
        c, h, w = config.input_shape
        shape = (1, h, w, c) if layout == "channels_last" else (1, c, h, w)
        layers = [model, *model._flatten_layers(include_self=False, recursive=True)]
        lengths = [(x, len(x._inbound_nodes), len(x._outbound_nodes)) for x in layers]
        try:
            x = keras.Input(batch_shape=shape)
            walker.nodes.append(Node("input"))
            walker.resolve(list(keras.tree.flatten(model.call(x))), {id(x): 0})
        except Exception as err:  # any error of the user's call()
            if trace:
                raise ConversionError(
                    "trace=True, but the keras model's call() could not be traced on a "
                    f"symbolic input of shape {shape} ({type(err).__name__}: {err}); pass "
                    "trace=False to pair by the order of its layers, without checking the "
                    "data flow") from err
            notes.append(f"its call() could not be traced on a symbolic input of shape {shape} "
                         f"({type(err).__name__}: {err}); its data flow (what feeds each "
                         "layer, the order of a route's inputs) was not checked, only the "
                         "shapes in the order of its layers")
            return None
        finally:
            for layer, inbound, outbound in lengths:
                del layer._inbound_nodes[inbound:]
                del layer._outbound_nodes[outbound:]
        return walker.nodes
    inputs = {}
    for kt in fn.inputs:
        walker.nodes.append(Node("input"))
        inputs[id(kt)] = len(walker.nodes) - 1
    walker.resolve(list(fn.outputs), inputs)
    return walker.nodes


class _Walker:
    """Adds the operations that compute some KerasTensors to ``nodes``."""

    def __init__(self, part_of: dict[int, int], keras: Any, channel_axes: tuple[int, int]) -> None:
        self.nodes: list[Node] = []
        self.part_of = part_of
        self.keras = keras
        self.channel_axes = channel_axes

    def resolve(self, outputs: list[Any], inputs: dict[int, int]) -> list[int]:
        """The nodes of ``outputs``, given the nodes of the tensors in
        ``inputs`` (by id); operations in between are added, depth first."""
        made: dict[tuple[int, int], list[int]] = {}

        def key(kt: Any) -> tuple[int, int]:
            op, index, _ = kt._keras_history
            return id(op), index

        def value(kt: Any) -> int:
            if id(kt) in inputs:
                return inputs[id(kt)]
            outs = made[key(kt)]
            tensor = kt._keras_history[2]
            return outs[tensor] if tensor < len(outs) else outs[0]

        stack = list(outputs)
        while stack:
            kt = stack[-1]
            if id(kt) in inputs or key(kt) in made:
                stack.pop()
                continue
            op, index, _ = kt._keras_history
            knode = op._inbound_nodes[index]
            todo = [t for t in knode.input_tensors if id(t) not in inputs and key(t) not in made]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            made[key(kt)] = self.emit(op, knode, [value(t) for t in knode.input_tensors])
        return [value(kt) for kt in outputs]

    def emit(self, op: Any, knode: Any, preds: list[int]) -> list[int]:
        """The nodes of ``op``'s outputs when called on ``preds``."""
        inner = _functional(op)
        if inner is not None:
            return self.resolve(list(inner.outputs), {id(t): p for t, p in zip(
                inner.inputs, preds, strict=True)})
        if id(op) in self.part_of:
            self.nodes.append(Node("part", preds[:1], self.part_of[id(op)]))
        elif isinstance(op, self.keras.layers.Layer) and _children(op) and any(
                id(leaf) in self.part_of for leaf in _leaves(op)):
            return self.trace_composite(op, knode, preds)
        elif type(op).__name__ == "Concatenate" and getattr(op, "axis", -1) in self.channel_axes:
            self.nodes.append(Node("concat", preds))
        elif isinstance(op, self.keras.layers.ZeroPadding2D) and len(preds) == 1:
            (top, bottom), (left, right) = op.padding
            self.nodes.append(Node("op", preds, pad=(int(top), int(bottom), int(left),
                                                     int(right))))
        else:
            self.nodes.append(Node("op", list(dict.fromkeys(preds)) if preds else []))
            if not preds:
                self.nodes[-1] = Node("input")  # a second model input: no counterpart
        return [len(self.nodes) - 1]

    def trace_composite(self, op: Any, knode: Any, preds: list[int]) -> list[int]:
        """A custom layer that holds layers with parameters (a Conv-BN-activation
        block): its call() on new symbolic inputs records what it does inside;
        the nodes that this adds to its layers are removed afterwards."""
        keras = self.keras
        layers = [op, *op._flatten_layers(include_self=False, recursive=True)]
        lengths = [(x, len(x._inbound_nodes), len(x._outbound_nodes)) for x in layers]
        try:
            fresh = {id(t): keras.Input(batch_shape=t.shape, dtype=t.dtype)
                     for t in knode.input_tensors}
            args, kwargs = keras.tree.map_structure(
                lambda x: fresh.get(id(x), x), (knode.arguments.args, knode.arguments.kwargs))
            try:
                out = op.call(*args, **kwargs)
            except Exception as err:  # any error of the user's call()
                raise ModelMismatchError(
                    f"keras layer {op.name!r} ({type(op).__name__}) holds layers with "
                    f"parameters, and its call() could not be traced on symbolic inputs "
                    f"({type(err).__name__}: {err}), so where its layers sit in the data flow "
                    "is not known", framework_layer=op.name) from err
            outs = keras.tree.flatten(out)
            return self.resolve(list(outs), {id(fresh[id(t)]): p for t, p in zip(
                knode.input_tensors, preds, strict=True)})
        finally:
            for layer, inbound, outbound in lengths:
                del layer._inbound_nodes[inbound:]
                del layer._outbound_nodes[outbound:]


def _model(model: Any, keras: Any, config: Config, notes: list[str], trace: bool | None
           ) -> Model:
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"expected a Keras model, not {type(model).__name__}")
    if not model.built:
        raise ModelMismatchError("the Keras model is not built yet: build it (or call it once) "
                                 "before loading into it")
    parts = [p for layer in _leaves(model) if (p := _part(layer, keras)) is not None]
    graph = _graph(model, parts, keras, config, notes, trace)
    order = "the order of its layers"
    if graph is not None:
        order = "its functional graph" if _functional(model) is not None else "its traced call()"
    elif notes and trace is not False:
        order += "; " + notes[-1].partition("; ")[0]
    return Model("keras", parts, graph, order, _expected_shapes)


def _pair(model: Any, config: Config, keras: Any, trace: bool | None, **kwargs: Any
          ) -> Pairing:
    notes: list[str] = []
    pairing = pair(config, _model(model, keras, config, notes, trace), **kwargs)
    pairing._notes[:0] = notes
    return pairing


def _layout(model: Any, keras: Any) -> str:
    """The tensors' layout: that of the model's convolutions (Keras' default
    without any)."""
    convs = [x for x in _leaves(model)
             if isinstance(x, keras.layers.Conv2D | keras.layers.DepthwiseConv2D)]
    return str(convs[-1].data_format if convs else keras.config.image_data_format())


def _flatten(model: Any, keras: Any) -> str:
    """The order of an image's values after a Flatten before a Dense: Keras
    flattens NHWC tensors in HWC order, and a ``Flatten(data_format=
    "channels_first")`` moves the channels last first (HWC as well); only a
    channels_last Flatten of NCHW tensors keeps CHW. The tensors' layout is
    that of the model's convolutions."""
    layout = _layout(model, keras)
    flatten = next((x for x in _leaves(model) if isinstance(x, keras.layers.Flatten)), None)
    if layout == "channels_first" and (flatten is None or flatten.data_format != "channels_first"):
        return "CHW"
    return "HWC"


def _arrays(net: Network, pairing: Pairing, flatten: str, keras: Any
            ) -> list[tuple[Any, str, npt.NDArray[np.float32], int]]:
    """(variable, name for messages, values, darknet layer) of every
    variable to assign, every shape checked."""
    out: list[tuple[Any, str, npt.NDArray[np.float32], int]] = []
    parts = pairing.model.parts

    def put(part: Part, attr: str, values: npt.NDArray[Any], layer: Layer) -> None:
        var = getattr(part.obj, attr)
        if not isinstance(var, keras.Variable):
            raise ModelMismatchError(
                f"keras layer {part.name!r} ({part.type_name}): its {attr} is not a variable "
                f"but a computed {type(var).__name__} (LoRA enabled?), so it cannot take "
                f"darknet's values", framework_layer=part.name, darknet_layer=layer.index,
                line=layer.line)
        shape = tuple(int(n) for n in var.shape)
        if shape != tuple(values.shape):
            raise ModelMismatchError(
                f"keras variable {part.name}/{attr} has shape {shape}, but {layer.location} "
                f"gives {tuple(values.shape)}", framework_layer=part.name,
                darknet_layer=layer.index, line=layer.line,
                expected={attr: tuple(values.shape)}, found={attr: shape})
        out.append((var, f"{part.name}/{attr}", values, layer.index))

    def put_bn(part: Part, layer: Layer, mean: npt.NDArray[np.float32] | None = None) -> None:
        src = layer.source_params
        gamma, var = bn_for_eps(layer, src, part.eps, stacklevel=6)
        put(part, "gamma", gamma, layer)
        put(part, "beta", src["biases"], layer)
        put(part, "moving_mean", src["rolling_mean"] if mean is None else mean, layer)
        put(part, "moving_variance", var, layer)

    for p in pairing.pairs:
        d, f = p.dunit, p.funit
        if d is None or f is None or not net[d.index].loaded:
            continue
        layer = net[d.index]
        main = parts[f.main]
        if d.sig[0] == "bn":
            put_bn(main, layer)
            continue
        if d.sig[0] == "conv":
            layout = "HWCM" if main.type_name == "DepthwiseConv2D" else "HWIO"
        else:
            layout = "IO"
        order = flatten if d.sig[0] == "dense" else "auto"
        if d.bn_layer is not None:  # a [batchnorm] layer after a conv without batch norm
            if not net[d.bn_layer.index].loaded:
                raise bn_past_partial_end(net.path, d, main)
            bn_layer = net[d.bn_layer.index]
            w, plain = layer_fused(layer, layout, "float32", order, fuse=False)
            bias = np.asarray(plain, np.float32)
            if f.bn is None:  # fuse=True: folded into the conv
                flat = w.reshape(*w.shape[:-2], -1) if layout == "HWCM" else w
                folded, fb = fold_bn(np.asarray(flat, np.float32), bias,
                                     bn_layer.source_params, out_axis=-1)
                put(main, "kernel", folded.reshape(w.shape), layer)
                put(main, "bias", fb, layer)
                continue
            put(main, "kernel", w, layer)
            assert f.bn is not None
            if main.bias:
                put(main, "bias", bias, layer)
                put_bn(parts[f.bn], bn_layer)
            else:  # the conv's bias goes into the mean: bn(x + b) = bn'(x), mean' = mean - b
                mean = bn_layer.source_params["rolling_mean"].astype(np.float64) - bias
                put_bn(parts[f.bn], bn_layer, mean.astype(np.float32))
            continue
        fold = d.bn and f.bn is None
        w, b = layer_fused(layer, layout, "float32", order, fuse=fold)
        put(main, "kernel", w, layer)
        if fold or not d.bn:
            put(main, "bias", b, layer)
            continue
        if main.bias:
            put(main, "bias", np.zeros_like(b), layer)
        assert f.bn is not None
        put_bn(parts[f.bn], layer)
    return out


def check_model(model: Any, net: Network | Config, *, mapping: Mapping[int, Any] | None = None,
                strict: bool = True, fuse: bool = False, trace: bool | None = None) -> Pairing:
    """Pair ``net``'s layers with the Keras ``model``'s, as :func:`load_into`
    would, and check every shape, without changing the model.

    Returns:
        The :class:`~yolo_io.keras.Pairing`: ``print()`` it for a table of
        darknet layer, cfg line, Keras layer, shapes, how each pair was found
        and its status; ``.rows()`` for the same as dicts.

    Raises:
        ModelMismatchError: (a ConversionError) the first layer that does not
            fit, with its name, the expected and found shapes, the darknet
            layer and its cfg line, and the likely cause (a class count, a
            layer too many or too few).
        ConversionError: ``trace=True`` and a call() that cannot be traced.
    """
    from .._model.network import Network

    keras = _keras()
    config = net.config if isinstance(net, Network) else net
    return _pair(model, config, keras, trace, mapping=mapping, strict=strict, fuse=fuse)


def load_into(model: Any, net: Network, *, fuse: bool = False,
              mapping: Mapping[int, Any] | None = None, strict: bool = True,
              trace: bool | None = None) -> Pairing:
    """Load ``net``'s parameters into a Keras 3 model written by hand (a
    hunglc007-style YOLO, a custom backbone), whatever its layer names and
    whatever order Keras lists its layers in.

    Conv2D (any ``groups``), DepthwiseConv2D, Dense and BatchNormalization
    layers are paired with darknet's convolutional, connected and batchnorm
    layers by following the model's functional graph (a subclassed model: its
    ``call()`` traced on a symbolic input of the cfg's shape; where that
    fails, or with ``trace=False``, the order of its layers, shapes only, and
    the pairing's notes say so), every shape, stride and dilation is checked,
    and so is every conv's padding (a ZeroPadding2D traced right before it
    counts; without the data flow, a padding that no ZeroPadding2D before it
    could make darknet's is refused, such as more than darknet's on a side or
    ``"same"`` at stride 2 on an even size, and the rest, such as ``"valid"``
    where darknet pads, is only noted: ``trace=True`` decides), and only then
    is anything assigned.

    Values: kernels in Keras' layouts (Conv2D HWIO, DepthwiseConv2D HWCM,
    Dense IO, with the rows of a Dense after a Flatten of an NHWC image in
    HWC order); batch norms as gamma, beta, moving mean and a moving variance
    adjusted to the layer's own ``epsilon`` (Keras' default 1e-3; see
    :meth:`Layer.bn_params`); with ``fuse=True``, a darknet batch norm whose
    conv has a bias and no BatchNormalization after it is folded into it. A
    conv with a bias followed by a BatchNormalization gets a zero bias.

    Args:
        model: a built Keras model.
        net: the loaded network (:func:`yolo_io.load`).
        fuse: allow folding batch norms into convs with a bias and no
            BatchNormalization of their own.
        mapping: ``{darknet layer index: Keras layer name}`` for pairs the
            structure cannot settle.
        strict: every darknet layer with parameters has a Keras layer and the
            reverse (False: those without a counterpart are left alone).
        trace: for a subclassed model (a functional model's graph is always
            followed): None: pair by its traced call()'s data flow, or by the
            order of its layers (noted) if it cannot be traced; True: the
            same, but a call() that cannot be traced is an error; False:
            never trace (noted).

    Returns:
        The :class:`~yolo_io.keras.Pairing` that was loaded (printable).

    Raises:
        ModelMismatchError: a layer that does not fit (see
            :func:`check_model`); the model is unchanged.
        ConversionError: a darknet layer no Keras layer type here takes;
            ``trace=True`` and a call() that cannot be traced.
    """
    keras = _keras()
    pairing = _pair(model, net.config, keras, trace, mapping=mapping, strict=strict, fuse=fuse)
    assignments = _arrays(net, pairing, _flatten(model, keras), keras)
    from .._model.network import evict_behind

    step = evict_behind(net)  # the pages of the layers assigned leave the resident set
    for var, _, values, index in assignments:
        step(index)
        var.assign(values)
    step(None)
    return pairing
