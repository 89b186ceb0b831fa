"""``yolo-io inspect CFG [WEIGHTS]``: one row per layer, with totals."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._model.config import CfgLayer, parse_cfg
from .._model.network import Network
from .common import (
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    Failure,
    check_paths,
    load_or_fail,
    shape_text,
    table,
)

if TYPE_CHECKING:
    from .._model.attrs import LayerAttrs


def _details(layer: CfgLayer, attrs: LayerAttrs) -> str:
    """The main hyperparameters of a layer, compactly."""
    from .._model.attrs import (  # the records, imported when a table is made
        ConnectedAttrs,
        ConvolutionalAttrs,
        PoolAttrs,
        RegionAttrs,
        RouteAttrs,
        ShortcutAttrs,
        UpsampleAttrs,
        YoloAttrs,
    )

    if isinstance(attrs, ConvolutionalAttrs):
        stride = (str(attrs.stride_x) if attrs.stride_x == attrs.stride_y
                  else f"{attrs.stride_y},{attrs.stride_x}")
        text = f"{attrs.filters} {attrs.size}x{attrs.size}/{stride}"
        text += f" g{attrs.groups}" if attrs.groups > 1 else ""
        text += f" d{attrs.dilation}" if attrs.dilation > 1 else ""
        text += " bn" if attrs.batch_normalize else ""
        text += f" share={attrs.share_index}" if attrs.share_index is not None else ""
        return text
    if isinstance(attrs, PoolAttrs):
        return f"{attrs.size}x{attrs.size}/{attrs.stride_x}"
    if isinstance(attrs, RouteAttrs):
        text = "layers=" + ",".join(map(str, attrs.input_layers))
        return text + (f" group {attrs.group_id}/{attrs.groups}" if attrs.groups > 1 else "")
    if isinstance(attrs, ShortcutAttrs):
        return "from=" + ",".join(map(str, attrs.input_layers[1:]))
    if isinstance(attrs, UpsampleAttrs):
        return f"x{attrs.stride}"
    if isinstance(attrs, YoloAttrs):
        return f"classes={attrs.classes} mask={','.join(map(str, attrs.mask))}"
    if isinstance(attrs, RegionAttrs):
        return f"classes={attrs.classes} num={attrs.num}"
    if isinstance(attrs, ConnectedAttrs):
        return f"{attrs.outputs}" + (" bn" if attrs.batch_normalize else "")
    # Any other kind: its first few plain fields (the activation has its column).
    plain = [f"{f.name}={_plain(getattr(attrs, f.name))}" for f in dataclasses.fields(attrs)
             if f.name != "activation"
             and isinstance(getattr(attrs, f.name), (bool, int, float, str))]
    return " ".join(plain[:3])


def _plain(value: object) -> str:
    return str(int(value)) if isinstance(value, bool) else f"{value:g}" if isinstance(
        value, float) else str(value)


def _layer_row(layer: CfgLayer, net: Network | None) -> dict[str, Any]:
    attrs = layer.attrs
    row: dict[str, Any] = {
        "index": layer.index, "type": layer.type, "section": layer.section, "line": layer.line,
        "inputs": list(layer.inputs), "input_shape": list(layer.input_shape),
        "output_shape": list(layer.output_shape), "activation": layer.activation,
        "details": _details(layer, attrs), "attrs": dataclasses.asdict(attrs),
        "params": {name: list(shape) for name, shape in layer.param_shapes.items()},
        "param_count": layer.param_count, "bytes": 4 * layer.param_count,
    }
    row["input_shapes"] = [list(s) for s in layer.input_shapes] or [row["input_shape"]]
    if net is not None:
        row["offset"] = net[layer.index].offset
        row["loaded"] = net[layer.index].loaded
    return row


def run(args: argparse.Namespace) -> int:
    check_paths("inspect", args.cfg, args.weights)
    if args.weights is None:
        from .._model.network import file_kinds

        kind = (file_kinds(args.cfg, args.cfg) or ("", ""))[0]
        if kind in ("weights", "safetensors"):
            what = "Darknet .weights" if kind == "weights" else ".safetensors"
            raise Failure(f"{args.cfg} is a {what} file, not a cfg; the cfg comes first: "
                           f"{PROG} inspect CFG [WEIGHTS], e.g. {PROG} inspect model.cfg "
                           f"{shlex.quote(args.cfg)}", EXIT_USAGE)
    config = parse_cfg(Path(args.cfg))
    net = load_or_fail(args.weights, config, args.partial) if args.weights else None
    rows = [_layer_row(layer, net) for layer in config]
    totals = {"layers": len(config), "param_count": config.param_count,
              "bytes": 4 * config.param_count, "expected_size": config.expected_size()}
    header: dict[str, Any] | None = None
    if net is not None:
        h = net.header
        header = {"version": [h.major, h.minor, h.revision], "seen": h.seen, "size": h.size,
                  "transpose": h.transpose}
        totals["expected_size"] = config.expected_size((h.major, h.minor))
        totals["covered_layers"] = net.covered_layers
    if args.json:
        json.dump({"cfg": config.path, "weights": args.weights, "header": header,
                   "input_shape": list(config.input_shape), "layers": rows, "totals": totals},
                  sys.stdout, indent=1)
        sys.stdout.write("\n")
        return EXIT_OK
    out = sys.stdout
    out.write(f"{config.path}: {len(config)} layers, input {shape_text(config.input_shape)}\n")
    if net is not None:
        h = net.header
        out.write(f"{args.weights}: version {h.major}.{h.minor}.{h.revision}, seen {h.seen}, "
                  f"{h.size}-byte header"
                  + (", legacy transposed connected weights" if h.transpose else "")
                  + (f", partial: {net.covered_layers} layers" if net.partial else "")
                  + "\n")
    headers = ["#", "type", "line", "input", "output", "act", "details", "params", "bytes"]
    if net is not None:
        headers.append("offset")
    rows_text = []
    for r in rows:
        cells = [str(r["index"]), r["type"], str(r["line"]),
                 "+".join(shape_text(s) for s in r["input_shapes"]),
                 shape_text(r["output_shape"]), r["activation"] or "", r["details"],
                 f"{r['param_count']:,}" if r["param_count"] else "",
                 f"{r['bytes']:,}" if r["param_count"] else ""]
        if net is not None:
            cells.append(f"{r['offset']:,}" if r["param_count"] else "")
        rows_text.append(cells)
    table(headers, rows_text, {0, 2, 7, 8, 9}, out)
    out.write(f"total: {totals['layers']} layers, {totals['param_count']:,} parameters, "
              f"{totals['bytes']:,} bytes of data; a .weights file of "
              f"{totals['expected_size']:,} bytes\n")
    return EXIT_OK
