"""yolo_io.save_safetensors() and load() of a .safetensors export: byte-exact
round trips darknet -> safetensors -> darknet, the files read by the
safetensors package itself, and hostile files (each a typed FormatError)."""

from __future__ import annotations

import filecmp
import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TINY_CFG, corpus_param
from test_save import STORING_CFG, VERSIONS

import yolo_io
from yolo_io.testing import write_weights

pytestmark = pytest.mark.filterwarnings("ignore::yolo_io.CfgWarning")


def file_bytes(net: yolo_io.Network) -> dict[str, np.ndarray[Any, Any]]:
    """Every darknet array of ``net`` as its float32 values lie in the file."""
    out = {}
    for layer in net:
        for spec in layer.param_specs:
            begin = layer.offset + 4 * spec.offset
            out[f"{layer.index}.{spec.name}"] = net.raw[begin:begin + 4 * spec.size].view(np.float32)
    return out


def storing_net(tmp_path: Path, version: tuple[int, int, int] = (0, 2, 5)) -> yolo_io.Network:
    cfg = tmp_path / "storing.cfg"
    cfg.write_text(STORING_CFG)
    return yolo_io.load(write_weights(tmp_path / "a.weights", cfg, version=version, seen=12345,
                                      seed=3), cfg)


@pytest.fixture
def tiny(tmp_path: Path) -> yolo_io.Network:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    return yolo_io.load(write_weights(tmp_path / "tiny.weights", cfg, seed=5, seen=77), cfg)


# -- round trips -------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: ".".join(map(str, v)))
def test_round_trip_every_storing_layer(tmp_path: Path, version: tuple[int, int, int]) -> None:
    net = storing_net(tmp_path, version)
    out = yolo_io.save_safetensors(tmp_path / "a.safetensors", net)
    back = yolo_io.load(out)
    assert back.header == net.header and back.path == str(out)
    assert back.config.source == net.config.source
    for a, b in zip(net, back, strict=True):
        assert a.params.keys() == b.params.keys()
        for name, array in a.params.items():
            view = b.params[name]
            np.testing.assert_array_equal(view, array)
            assert np.shares_memory(view, back.raw) and not view.flags.writeable
    yolo_io.save(tmp_path / "b.weights", back)
    assert filecmp.cmp(net.path, tmp_path / "b.weights", shallow=False)
    # The data region is the .weights data, byte for byte.
    data = back.raw[back[0].offset:]
    assert data.tobytes() == net.raw[net.header.size:].tobytes()


@pytest.mark.slow
@pytest.mark.parametrize("cfg", corpus_param(exclude=("yolor_csp.cfg",)))
def test_round_trip_corpus(cfg: Path, tmp_path: Path) -> None:
    original = write_weights(tmp_path / "a.weights", cfg, seed=1, seen=64_000)
    net = yolo_io.load(original, cfg)
    st = yolo_io.save_safetensors(tmp_path / "a.safetensors", net)
    back = yolo_io.load(st)
    assert back.config.source == cfg.read_bytes()
    yolo_io.save(tmp_path / "b.weights", back)
    assert filecmp.cmp(original, tmp_path / "b.weights", shallow=False)
    back.close()
    for path in (original, st, tmp_path / "b.weights"):  # up to 750 MB each
        path.unlink()


def test_fused_and_state_dict_work_on_a_loaded_export(tiny: yolo_io.Network, tmp_path: Path) -> None:
    back = yolo_io.load(yolo_io.save_safetensors(tmp_path / "t.safetensors", tiny))
    for i, (w, b) in tiny.fused_all("HWIO").items():
        w2, b2 = back.fused_all("HWIO")[i]
        np.testing.assert_array_equal(w, w2)
        np.testing.assert_array_equal(b, b2)
    sd, sd2 = tiny.state_dict(), back.state_dict()
    assert sd.keys() == sd2.keys()
    for k in sd:
        np.testing.assert_array_equal(sd[k], sd2[k])


def test_a_given_cfg_replaces_the_stored_one(tiny: yolo_io.Network, tmp_path: Path) -> None:
    out = yolo_io.save_safetensors(tmp_path / "t.safetensors", tiny)
    back = yolo_io.load(out, tiny.config.path)
    assert back.config.path == tiny.config.path
    other = TINY_CFG.replace("filters=4\n", "filters=6\n", 1)
    with pytest.raises(yolo_io.FormatError, match=r"does not match <string>: tensor \"0\.biases\""):
        yolo_io.load(out, other)


def test_non_utf8_cfg_is_kept_byte_for_byte(tmp_path: Path) -> None:
    cfg = tmp_path / "latin.cfg"
    cfg.write_bytes(TINY_CFG.encode().replace(b"[net]\n", b"[net]\n# caf\xe9\n", 1))
    net = yolo_io.load(write_weights(tmp_path / "a.weights", cfg), cfg)
    back = yolo_io.load(yolo_io.save_safetensors(tmp_path / "a.safetensors", net))
    assert back.config.source == cfg.read_bytes()


def test_progress_and_atomic_replace(tiny: yolo_io.Network, tmp_path: Path) -> None:
    seen: list[tuple[int, int, str]] = []
    out = yolo_io.save_safetensors(tmp_path / "t.safetensors", tiny,
                                   progress=lambda *event: seen.append(event))
    done = [d for d, _, _ in seen]
    assert done == sorted(done) and done[-1] == out.stat().st_size
    assert {total for _, total, _ in seen} == {out.stat().st_size}
    state: list[tuple[int, int, str]] = []  # a state dict: planned, then streamed
    named = yolo_io.save_safetensors(tmp_path / "s.safetensors", tiny, naming="yolo_io",
                                     progress=lambda *event: state.append(event))
    assert state[-1][:2] == (named.stat().st_size, named.stat().st_size)
    plain = yolo_io.save_safetensors(tmp_path / "u.safetensors", tiny)
    assert filecmp.cmp(out, plain, shallow=False)
    # Replacing a file atomically: the old mapping of it stays valid.
    back = yolo_io.load(out)
    before = back[0].params["weights"].copy()
    expected = plain.read_bytes()
    yolo_io.save_safetensors(plain, back)  # over another export, not the one it maps
    os.replace(plain, out)
    np.testing.assert_array_equal(back[0].params["weights"], before)
    assert out.read_bytes() == expected
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_partial_network_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    part = yolo_io.load(write_weights(tmp_path / "p.weights", cfg, layers=2), cfg, partial=True)
    with pytest.raises(yolo_io.ConversionError, match=r"only the first 3 of 9 layers"):
        yolo_io.save_safetensors(tmp_path / "p.safetensors", part)
    assert not (tmp_path / "p.safetensors").exists()


def test_weights_still_need_a_cfg(tiny: yolo_io.Network) -> None:
    with pytest.raises(TypeError, match="needs its cfg"):
        yolo_io.load(tiny.path)


# -- the safetensors package reads our files -------------------------------------------


def test_safetensors_package_reads_the_raw_export(tmp_path: Path) -> None:
    st = pytest.importorskip("safetensors")
    from safetensors.numpy import load_file

    net = storing_net(tmp_path, (1000, 1001, 0))  # legacy: a transposed connected matrix
    out = yolo_io.save_safetensors(tmp_path / "a.safetensors", net)
    tensors = load_file(out)
    views = {f"{layer.index}.{name}": array for layer in net for name, array in layer.params.items()}
    assert list(tensors) == list(views) or sorted(tensors) == sorted(views)
    moved = set()
    for key, data in file_bytes(net).items():
        assert tensors[key].dtype == np.float32
        np.testing.assert_array_equal(tensors[key].ravel(), data)
        if not views[key].flags.c_contiguous:  # a view with the file's strides
            moved.add(key)
            assert sorted(tensors[key].shape) == sorted(views[key].shape)
        else:
            np.testing.assert_array_equal(tensors[key], views[key])
    # the flipped conv ([c/groups][k][k][n]) and, under this legacy header,
    # the connected matrices ([in][out]) have the shape of their file bytes
    assert tensors["1.weights"].shape == (2, 3, 3, 4)
    assert "1.weights" in moved and "6.weights" in moved and "7.weights" in moved
    with st.safe_open(out, "np") as f:
        meta = f.metadata()
    assert meta["format"] == "yolo_io.darknet" and meta["layout"] == "darknet"
    assert meta["fuse"] == "0" and meta["cfg"] == STORING_CFG
    assert json.loads(meta["header"]) == {"major": 1000, "minor": 1001, "revision": 0,
                                          "seen": 12345}
    header_len = struct.unpack("<Q", out.read_bytes()[:8])[0]
    assert (8 + header_len) % 8 == 0


def test_a_file_of_the_safetensors_package_is_read_but_not_a_network(tmp_path: Path) -> None:
    pytest.importorskip("safetensors")
    from safetensors.numpy import save_file

    path = tmp_path / "other.safetensors"
    save_file({"a": np.ones((2, 3), np.float32), "b": np.zeros(4, np.int64)}, path)
    with pytest.raises(yolo_io.FormatError, match="not a yolo_io export"):
        yolo_io.load(path)
    save_file({"0.biases": np.ones(4, np.float32)}, path,
              metadata={"format": "yolo_io.state_dict", "naming": "darknet2pytorch", "fuse": "1"})
    with pytest.raises(yolo_io.FormatError,
                       match=r"state-dict export \(naming=darknet2pytorch, fuse=1\).*only a raw"):
        yolo_io.load(path)


# -- hostile files --------------------------------------------------------------------


def st_bytes(header: object, data: bytes, *, raw_header: bytes | None = None) -> bytes:
    text = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def tensor(dtype: str, shape: list[int], begin: int, end: int) -> dict[str, object]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


GOOD = {"a": tensor("F32", [2], 0, 8), "b": tensor("I64", [1], 8, 16)}

HOSTILE = {
    "length-past-end": (struct.pack("<Q", 1000) + b'{"a":1}', "header length of 1000 bytes"),
    "length-huge": (struct.pack("<Q", 2**63 + 5) + b"{}", "header length of 9223372036854775813"),
    "too-short": (b"\x01\x00", "fewer than the 8 of the header length"),
    "bad-json": (st_bytes(None, b"", raw_header=b'{"a": {"dtype": "F32",'),
                 "expected a string"),
    "not-an-object": (st_bytes(None, b"", raw_header=b"[1, 2]  "), "expected a JSON object"),
    "trailing-text": (st_bytes(None, b"", raw_header=b"{} x"), "text after its closing"),
    "duplicate-key": (st_bytes(None, b"\0" * 8, raw_header=b'{"a": {"dtype": "F32", "shape": [2], '
                               b'"data_offsets": [0, 8]}, "a": {}}'), 'repeats the key "a"'),
    "negative-dim": (st_bytes({"a": tensor("F32", [-2], 0, 8)}, b"\0" * 8), "a dimension"),
    "float-offset": (st_bytes(None, b"\0" * 8, raw_header=b'{"a": {"dtype": "F32", "shape": [2], '
                              b'"data_offsets": [0, 8.0]}}'), "found a fraction"),
    "unknown-dtype": (st_bytes({"a": tensor("F31", [2], 0, 8)}, b"\0" * 8),
                      'tensor "a" has the unknown dtype "F31"'),
    "unknown-field": (st_bytes({"a": {**tensor("F32", [2], 0, 8), "x": 1}}, b"\0" * 8),
                      'tensor "a" has the unknown field "x"'),
    "missing-field": (st_bytes({"a": {"dtype": "F32", "shape": [2]}}, b"\0" * 8),
                      'tensor "a" has no data_offsets'),
    "overlap": (st_bytes({"a": tensor("F32", [2], 0, 8), "b": tensor("F32", [2], 4, 12)},
                         b"\0" * 12), 'tensor "b" .* overlaps tensor "a"'),
    "gap": (st_bytes({"a": tensor("F32", [1], 0, 4), "b": tensor("F32", [1], 8, 12)},
                     b"\0" * 12), "bytes 4..8 of the data region belong to no tensor"),
    "past-end": (st_bytes({"a": tensor("F32", [4], 0, 16)}, b"\0" * 8),
                 'tensor "a" has data_offsets \\[0, 16\\] past the end'),
    "shape-mismatch": (st_bytes({"a": tensor("F32", [3], 0, 8)}, b"\0" * 8),
                       r'tensor "a" is F32 \(3,\): it needs 12 bytes, but .* hold 8'),
    "shape-overflow": (st_bytes({"a": tensor("F64", [2**62, 2**62], 0, 8)}, b"\0" * 8),
                       "overflows 64 bits"),
    "end-before-begin": (st_bytes({"a": tensor("F32", [0], 8, 4)}, b"\0" * 8),
                         "the end is before the begin"),
    "trailing-data": (st_bytes(GOOD, b"\0" * 20), "4 bytes trail the last tensor"),
    "metadata-not-string": (st_bytes({"__metadata__": {"k": 1}}, b""), 'value of "k" not a string'),
    "bad-escape": (st_bytes(None, b"", raw_header=b'{"a\\q": {}}'), "invalid escape"),
    "lone-surrogate": (st_bytes(None, b"", raw_header=b'{"\\ud800": {}}'), "lone high surrogate"),
    "not-utf8": (st_bytes(None, b"", raw_header=b'{"\xff": {}}'), "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_files_are_format_errors(case: str, tmp_path: Path) -> None:
    data, match = HOSTILE[case]
    path = tmp_path / f"{case}.safetensors"
    path.write_bytes(data)
    with pytest.raises(yolo_io.FormatError, match=match) as err:
        yolo_io._core.SafetensorsFile(str(path))
    assert str(path) in str(err.value)


def test_valid_hostile_baseline(tmp_path: Path) -> None:
    path = tmp_path / "good.safetensors"
    path.write_bytes(st_bytes(GOOD, b"\0" * 16))
    yolo_io._core.SafetensorsFile(str(path))  # the same file, valid: no error
    with pytest.raises(yolo_io.FormatError, match="not a yolo_io export"):
        yolo_io.load(path)


def rewrite(path: Path, edit: Any) -> Path:
    """The export at ``path`` with its JSON header changed by ``edit(header)``."""
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    edit(header)
    text = json.dumps(header).encode()
    text += b" " * (-(8 + len(text)) % 8)
    out = path.with_name("edited.safetensors")
    out.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    return out


def test_metadata_that_does_not_match_the_tensors(tiny: yolo_io.Network, tmp_path: Path) -> None:
    out = yolo_io.save_safetensors(tmp_path / "t.safetensors", tiny)

    def cfg(text: str) -> Any:
        return lambda h: h["__metadata__"].__setitem__("cfg", text)

    other = TINY_CFG.replace("filters=18", "filters=12").replace("mask=0,1,2", "mask=0,1")
    with pytest.raises(yolo_io.FormatError, match=r"\(its cfg\)") as err:
        yolo_io.load(rewrite(out, cfg(other)))
    assert "does not match" in str(err.value)
    with pytest.raises(yolo_io.CfgError, match=r"\(its cfg\):"):
        yolo_io.load(rewrite(out, cfg("[net]\nwidth=8\n[bogus]\n")))

    def drop(name: str) -> Any:
        return lambda h: h["__metadata__"].pop(name)

    with pytest.raises(yolo_io.FormatError, match="without its cfg"):
        yolo_io.load(rewrite(out, drop("cfg")))
    with pytest.raises(yolo_io.FormatError, match="without its darknet header"):
        yolo_io.load(rewrite(out, drop("header")))
    with pytest.raises(yolo_io.FormatError, match='unknown key "x"'):
        yolo_io.load(rewrite(out, lambda h: h["__metadata__"].__setitem__("header", '{"x": 1}')))
    with pytest.raises(yolo_io.FormatError, match="fuse=1"):
        yolo_io.load(rewrite(out, lambda h: h["__metadata__"].__setitem__("fuse", "1")))

    def rename(h: dict[str, Any]) -> None:
        h["0.zzz"] = h.pop("0.biases")

    with pytest.raises(yolo_io.FormatError, match=r'no tensor "0\.biases", which layer 0'):
        yolo_io.load(rewrite(out, rename))

    def swap(h: dict[str, Any]) -> None:  # both F32 (4,): the offsets say which is which
        h["0.scales"], h["0.biases"] = h["0.biases"], h["0.scales"]

    with pytest.raises(yolo_io.FormatError, match=r'tensor "0\.biases" is F32 \(4,\) at bytes 16'):
        yolo_io.load(rewrite(out, swap))


def test_cfg_is_optional_only_for_exports(tiny: yolo_io.Network, tmp_path: Path) -> None:
    sniffed = yolo_io._core.sniff_file
    out = yolo_io.save_safetensors(tmp_path / "t.safetensors", tiny)
    assert sniffed(str(out)) == "safetensors" and sniffed(tiny.path) == "weights"


# -- state-dict exports (naming, fuse, layout, dtype) -------------------------------------

# What every naming can hold: convolutions without groups, with and without BN.
PORTABLE_CFG = """\
[net]
width=16
height=16
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=mish

[convolutional]
filters=8
size=1
stride=1
pad=1
activation=linear

[route]
layers=-1,-2

[convolutional]
filters=18
size=1
stride=1
pad=1
activation=linear

[yolo]
mask=0,1,2
anchors=1,1, 2,2, 3,3
classes=1
num=3
"""


@pytest.fixture
def portable(tmp_path: Path) -> yolo_io.Network:
    cfg = tmp_path / "portable.cfg"
    cfg.write_text(PORTABLE_CFG)
    return yolo_io.load(write_weights(tmp_path / "p.weights", cfg, seed=9, seen=3), cfg)


STATE_DICT_CASES = [
    {"naming": "yolo_io"},
    {"naming": "darknet2pytorch"},
    {"naming": "darknet2pytorch", "fuse": True},
    {"naming": "ultralytics"},
    {"naming": "ultralytics", "fuse": True},
    {"fuse": True, "layout": "HWIO"},
    {"dtype": "float16"},
    {"naming": "darknet2pytorch", "fuse": True, "layout": "OHWI", "dtype": "float16"},
]


@pytest.mark.parametrize("options", STATE_DICT_CASES,
                         ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_state_dict_export_equals_state_dict(portable: yolo_io.Network, tmp_path: Path,
                                             options: dict[str, Any]) -> None:
    st = pytest.importorskip("safetensors")
    from safetensors.numpy import load_file, save_file

    out = yolo_io.save_safetensors(tmp_path / "s.safetensors", portable, **options)
    expected = portable.state_dict(naming=options.get("naming", "yolo_io"),
                               fuse=options.get("fuse", False), layout=options.get("layout"),
                               dtype=options.get("dtype", "float32"))
    got = load_file(out)
    assert list(got) == list(expected) or sorted(got) == sorted(expected)
    for key, array in expected.items():
        assert got[key].dtype == array.dtype and got[key].shape == array.shape, key
        np.testing.assert_array_equal(got[key], array)
    with st.safe_open(out, "np") as f:
        meta = f.metadata()
    assert meta["format"] == "yolo_io.state_dict"
    assert meta["naming"] == options.get("naming", "yolo_io")
    assert meta["fuse"] == str(int(options.get("fuse", False)))
    assert meta["dtype"] == options.get("dtype", "float32") and meta["cfg"] == PORTABLE_CFG
    # The package's own file of the same tensors holds the same values (its
    # save_file writes the 0-d num_batches_tracked as shape (1,); ours keep ()).
    save_file({k: np.ascontiguousarray(v) for k, v in expected.items()}, tmp_path / "p.st")
    theirs = load_file(tmp_path / "p.st")
    assert all(np.array_equal(theirs[k].reshape(got[k].shape), got[k]) for k in expected)
    with pytest.raises(yolo_io.FormatError, match=r"state-dict export .* not a raw one"):
        yolo_io.load(out)


def test_bfloat16_export_holds_the_state_dict_bits(tiny: yolo_io.Network, tmp_path: Path) -> None:
    out = yolo_io.save_safetensors(tmp_path / "b.safetensors", tiny, dtype="bfloat16", fuse=True)
    yolo_io._core.SafetensorsFile(str(out))  # valid
    raw = out.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    for key, array in tiny.state_dict(fuse=True, dtype="bfloat16").items():
        entry = header[key]
        assert entry["dtype"] == "BF16" and tuple(entry["shape"]) == array.shape
        begin, end = entry["data_offsets"]
        assert raw[8 + n + begin:8 + n + end] == np.ascontiguousarray(array).tobytes()


def test_state_dict_export_refuses_what_the_naming_cannot_hold(tmp_path: Path) -> None:
    net = storing_net(tmp_path)
    target = tmp_path / "x.safetensors"
    with pytest.raises(yolo_io.ConversionError, match="darknet2pytorch"):
        yolo_io.save_safetensors(target, net, naming="darknet2pytorch")
    with pytest.raises(ValueError, match="naming must be one of"):
        yolo_io.save_safetensors(target, net, naming="keras")
    with pytest.raises(ValueError, match="dtype must be one of"):
        yolo_io.save_safetensors(target, net, dtype="int8")
    assert not target.exists()
    # The yolo_io naming holds every storing layer, LSTMs and all.
    out = yolo_io.save_safetensors(target, net, naming="yolo_io")
    assert yolo_io._core.SafetensorsFile(str(out)) is not None


def test_state_dict_export_loads_into_darknet2any(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    d2p = pytest.importorskip("darknet2any.tool.darknet2pytorch")
    import contextlib
    import io

    from safetensors.numpy import load_file
    from test_darknet2any import SMALL  # after the importorskips: it needs torch

    cfg = tmp_path / "small.cfg"
    cfg.write_text(SMALL)
    net = yolo_io.load(write_weights(tmp_path / "m.weights", cfg, seed=11, realistic=True), cfg)
    out = yolo_io.save_safetensors(tmp_path / "m.safetensors", net, naming="darknet2pytorch")
    with contextlib.redirect_stdout(io.StringIO()):
        model = d2p.Darknet(str(cfg))
    state = {k: torch.from_numpy(v) for k, v in load_file(out).items()}
    model.load_state_dict(state, strict=True)


@pytest.mark.parametrize(("edit", "found"), [
    (("major", "-1"), "negative version"),
    (("minor", "-3"), "negative version"),
    (("revision", "-7"), None),  # kept, as in a .weights file
    (("revision", "-2147483648"), None),
    (("revision", "2147483648"), "int32"),
])
def test_the_metadata_header_follows_the_weights_rule(tiny: yolo_io.Network, tmp_path: Path,
                                                      edit: tuple[str, str],
                                                      found: str | None) -> None:
    """Issue 22: the raw export's header is judged by the core's one rule, as
    a .weights header is on load and on save."""
    data = yolo_io.save_safetensors(tmp_path / "t.safetensors", tiny).read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    head = json.loads(data[8:8 + n])
    key, value = edit
    header = json.loads(head["__metadata__"]["header"])
    header[key] = int(value)
    head["__metadata__"]["header"] = json.dumps(header)
    text = json.dumps(head).encode()
    text += b" " * (-len(text) % 8)  # the data region stays aligned
    path = tmp_path / "x.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + n:])
    if found is None:
        net = yolo_io.load(path)
        assert net.header.revision == int(value)
        assert yolo_io.load(yolo_io.save(tmp_path / "x.weights", net),
                            TINY_CFG).header.revision == int(value)
    else:
        with pytest.raises(yolo_io.FormatError, match=found):
            yolo_io.load(path)


def test_an_export_over_the_raw_export_the_network_maps_is_refused(tmp_path: Path) -> None:
    """The network's own file, even as a file of the same kind (issue 22):
    no writer replaces the file it reads."""
    cfg = tmp_path / "m.cfg"
    cfg.write_text(TINY_CFG)
    raw = yolo_io.save_safetensors(tmp_path / "m.safetensors",
                                   yolo_io.load(write_weights(tmp_path / "m.weights", cfg), cfg))
    before = raw.read_bytes()
    net = yolo_io.load(raw)
    for write in (lambda: yolo_io.save_safetensors(raw, net),
                  lambda: yolo_io.save_safetensors(raw, net, fuse=True),
                  lambda: yolo_io.save(raw, net),
                  lambda: yolo_io.save_fused(raw, tmp_path / "f.cfg", net)):
        with pytest.raises(yolo_io.OutputIsInputError, match=r"m\.safetensors"):
            write()
    assert raw.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.cfg", "m.safetensors", "m.weights"]


@pytest.mark.parametrize("naming", ["yolo_io", "darknet2pytorch"])
def test_an_overflow_warning_points_at_the_caller(tmp_path: Path, naming: str) -> None:
    """A float16 overflow's PrecisionWarning names the line that called
    save_safetensors (a state dict is planned and written in parts through
    several frames)."""
    cfg = tmp_path / "t.cfg"
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\nsize=3\n"
                   "pad=1\nactivation=linear\n")
    weights = write_weights(tmp_path / "t.weights", cfg)
    data = np.memmap(weights, dtype=np.float32, mode="r+", offset=20)
    data[10] = 1e6  # a weight beyond float16's 65504
    data.flush()
    del data
    net = yolo_io.load(weights, cfg)
    with pytest.warns(yolo_io.PrecisionWarning) as record:
        yolo_io.save_safetensors(tmp_path / "h.safetensors", net, dtype="float16",
                                 naming=naming)
    assert {w.filename for w in record} == {__file__}
