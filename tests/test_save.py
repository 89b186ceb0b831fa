"""yolo_io.save(): byte-exact round trips, partial files, checks before any
byte is written, and the atomic write (kill mid-save, full disk)."""

from __future__ import annotations

import filecmp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_CFG, TINY_CFG, corpus_param

import yolo_io
from yolo_io.testing import write_weights

pytestmark = pytest.mark.filterwarnings("ignore::yolo_io.CfgWarning")

VERSIONS = [(0, 2, 5), (0, 1, 0), (0, 2, 0), (1, 0, 0), (1000, 1001, 0)]

# One cfg per layer type that stores data (and a [connected] for the legacy
# transposition), small enough to write in microseconds.
STORING_CFG = """\
[net]
width=8
height=8
channels=3

[convolutional]
batch_normalize=1
filters=4
size=3
pad=1
activation=leaky

[convolutional]
filters=4
size=3
pad=1
groups=2
flipped=1
activation=linear

[batchnorm]

[shortcut]
from=-2
weights_type=per_channel
weights_normalization=relu
activation=linear

[deconvolutional]
filters=2
size=2
stride=2
batch_normalize=1
activation=leaky

[local]
filters=2
size=3
stride=2
activation=leaky

[connected]
output=6
batch_normalize=1
activation=leaky

[connected]
output=5
activation=linear

[rnn]
output=4
hidden=4
batch_normalize=1
activation=leaky

[lstm]
output=3

[crnn]
output=2
hidden=2
size=1

[conv_lstm]
output=2
size=1

[gru]
output=3

[implicit]
filters=4
"""


@pytest.fixture
def storing(tmp_path: Path) -> Path:
    cfg = tmp_path / "storing.cfg"
    cfg.write_text(STORING_CFG)
    return cfg


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: ".".join(map(str, v)))
def test_round_trip_every_storing_layer(storing: Path, tmp_path: Path,
                                        version: tuple[int, int, int]) -> None:
    original = write_weights(tmp_path / "a.weights", storing, version=version, seen=12345, seed=3)
    net = yolo_io.load(original, storing)
    types = {layer.type for layer in net if layer.param_count}
    kinds_that_store = {"convolutional", "batchnorm", "shortcut", "deconvolutional", "local",
                        "connected", "rnn", "lstm", "crnn", "conv_lstm", "gru", "implicit"}
    assert types == kinds_that_store
    yolo_io.save(tmp_path / "b.weights", net)
    assert filecmp.cmp(original, tmp_path / "b.weights", shallow=False)
    arrays = {layer.index: dict(layer.params) for layer in net}
    yolo_io.save(tmp_path / "c.weights", arrays, storing, header=net.header)
    assert filecmp.cmp(original, tmp_path / "c.weights", shallow=False)
    assert yolo_io.load(tmp_path / "c.weights", storing).header == net.header


@pytest.mark.slow
@pytest.mark.parametrize("cfg", corpus_param(exclude=("yolor_csp.cfg",)))
def test_round_trip_corpus(cfg: Path, tmp_path: Path) -> None:
    original = write_weights(tmp_path / "a.weights", cfg, seed=1, seen=64_000)
    net = yolo_io.load(original, cfg)
    yolo_io.save(tmp_path / "b.weights", net)
    assert filecmp.cmp(original, tmp_path / "b.weights", shallow=False)
    yolo_io.save(tmp_path / "c.weights", {layer.index: dict(layer.params) for layer in net}, cfg,
                 header=net.header)
    assert filecmp.cmp(original, tmp_path / "c.weights", shallow=False)
    net.close()
    for name in ("a.weights", "b.weights", "c.weights"):  # up to 3 x 790 MB per cfg
        (tmp_path / name).unlink()


def test_legacy_header_transposes_connected_weights_back(storing: Path, tmp_path: Path) -> None:
    legacy = write_weights(tmp_path / "legacy.weights", storing, version=(1000, 1001, 0), seed=4)
    net = yolo_io.load(legacy, storing)
    yolo_io.save(tmp_path / "modern.weights", net, header=(0, 2, 5))
    modern = yolo_io.load(tmp_path / "modern.weights", storing)
    assert modern.header[:3] == (0, 2, 5) and not modern.header.transpose
    for a, b in zip(net, modern, strict=True):
        for name, array in a.params.items():
            np.testing.assert_array_equal(array, b.params[name])
    connected = next(layer for layer in net if layer.type == "connected")
    raw_old = net.raw[connected.offset:connected.offset + connected.nbytes]
    raw_new = modern.raw[connected.offset + 4:connected.offset + 4 + connected.nbytes]
    assert not np.array_equal(raw_old, raw_new)  # another byte order in the file
    yolo_io.save(tmp_path / "legacy2.weights", modern, header=net.header)
    assert filecmp.cmp(legacy, tmp_path / "legacy2.weights", shallow=False)


def test_seen_is_kept_or_overridden(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    net = yolo_io.load(write_weights(tmp_path / "a.weights", cfg, seen=2**40 + 5), cfg)
    assert yolo_io.load(yolo_io.save(tmp_path / "b.weights", net), cfg).header.seen == 2**40 + 5
    out = yolo_io.save(tmp_path / "c.weights", net, seen=7)
    assert yolo_io.load(out, cfg).header.seen == 7
    with pytest.raises(ValueError, match="32-bit `seen`"):
        yolo_io.save(tmp_path / "d.weights", net, header=(0, 1, 0))
    assert not (tmp_path / "d.weights").exists()
    out = yolo_io.save(tmp_path / "e.weights", net, header=(0, 1, 0, 9))
    assert yolo_io.load(out, cfg).header == (0, 1, 0, 9, 16, False)


def test_partial_equals_darknet_partial_yolov4_137(tmp_path: Path) -> None:
    cfg = SHARED_CFG / "yolov4.cfg"
    if not cfg.is_file():
        pytest.skip("the corpus is not beside the checkout")
    net = yolo_io.load(write_weights(tmp_path / "y.weights", cfg, seed=2, seen=32_032_000,
                                     version=(0, 1, 0)), cfg)
    out = yolo_io.save(tmp_path / "yolov4.conv.137", net, upto=137)
    assert out.stat().st_size == 170038676  # MANIFEST: yolov4.conv.137
    # AlexeyAB darknet's `partial` (checked against its binary, built outside
    # this repository, for 16- and 20-byte inputs): its own header, version
    # 0.2.5 with seen 0, then the first 137 layers' bytes as they were.
    data = out.read_bytes()
    assert data[:20] == yolo_io.testing.header_bytes((0, 2, 5), seen=0)
    assert data[20:] == net.raw[16:16 + 170038676 - 20].tobytes()
    part = yolo_io.load(out, cfg, partial=True)
    assert part.covered_layers == 137 and part.header == (0, 2, 5, 0, 20, False)
    arrays = yolo_io.save(tmp_path / "b.conv.137", {i: dict(net[i].params) for i in range(137)},
                          cfg, upto=137)
    assert filecmp.cmp(out, arrays, shallow=False)
    kept = yolo_io.save(tmp_path / "c.conv.137", net, upto=137, header=net.header)
    assert yolo_io.load(kept, cfg, partial=True).header == net.header
    net.close()
    for name in ("y.weights", "yolov4.conv.137", "b.conv.137", "c.conv.137"):
        (tmp_path / name).unlink()


def test_checks_before_writing(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    net = yolo_io.load(write_weights(tmp_path / "a.weights", cfg), cfg)
    arrays = {layer.index: dict(layer.params) for layer in net}
    target = tmp_path / "out.weights"
    target.write_bytes(b"keep me")
    first = net[0]

    def attempt(change: dict[int, dict[str, object]], match: str) -> None:
        with pytest.raises(yolo_io.ConversionError, match=match):
            yolo_io.save(target, {**arrays, **change}, cfg)
        assert target.read_bytes() == b"keep me"
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []

    w = first.params["weights"]
    where = rf"layer 0 \(\[convolutional\], .*tiny\.cfg line {first.line}\)"
    attempt({0: {**arrays[0], "weights": w[:2]}},
            where + r": array 'weights' has shape \(2, 3, 3, 3\), the cfg expects \(4, 3, 3, 3\)")
    attempt({0: {k: v for k, v in arrays[0].items() if k != "scales"}}, "'scales' .* is missing")
    attempt({0: {**arrays[0], "extra": w}}, "unexpected array 'extra'")
    attempt({0: {**arrays[0], "weights": w.astype(np.int32)}}, "dtype int32")
    attempt({99: {}}, "layer index 99 is outside")
    del arrays[0]
    attempt({}, "'biases' .* is missing")


def test_accepts_float64_and_converts(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    original = write_weights(tmp_path / "a.weights", cfg)
    net = yolo_io.load(original, cfg)
    arrays = {layer.index: {k: v.astype(np.float64) for k, v in layer.params.items()}
              for layer in net}
    out = yolo_io.save(tmp_path / "b.weights", arrays, cfg)
    assert filecmp.cmp(original, out, shallow=False)


def test_save_over_the_mapped_file_is_refused(tmp_path: Path) -> None:
    """Even a file of the same kind: a save over the network's own file
    would lose the only copy if it wrote something else (issue 22)."""
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    path = write_weights(tmp_path / "a.weights", cfg, seed=5)
    before = path.read_bytes()
    net = yolo_io.load(path, cfg)
    with pytest.raises(yolo_io.OutputIsInputError, match="rename it over the old file"):
        yolo_io.save(path, net, seen=99)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.weights", "tiny.cfg"]


def test_saves_the_mapped_bytes_after_the_source_path_changes(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The core reads the source through the descriptor its mapping keeps,
    not by path: replaced, or relative after a change of folder, the output
    holds the bytes that were loaded."""
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    path = write_weights(tmp_path / "a.weights", cfg, seed=5)
    before = path.read_bytes()
    net = yolo_io.load(path, cfg)
    write_weights(tmp_path / "other.weights", cfg, seed=6).replace(path)
    yolo_io.save(tmp_path / "out1.weights", net)
    assert (tmp_path / "out1.weights").read_bytes() == before

    monkeypatch.chdir(tmp_path)
    relative = yolo_io.load("out1.weights", cfg)
    monkeypatch.chdir(tmp_path.parent)
    yolo_io.save(tmp_path / "out2.weights", relative)
    assert (tmp_path / "out2.weights").read_bytes() == before


def test_a_source_truncated_after_loading_is_a_format_error(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    path = write_weights(tmp_path / "a.weights", cfg)
    net = yolo_io.load(path, cfg)
    size = path.stat().st_size
    os.truncate(path, size - 8)
    with pytest.raises(yolo_io.FormatError, match=f"held {size} bytes when it was loaded"):
        yolo_io.save(tmp_path / "out.weights", net)
    assert not (tmp_path / "out.weights").exists()
    assert not list(tmp_path.glob("out.weights*"))
    assert not list(tmp_path.glob(".yolo_io-*"))


def test_keeps_the_mode_of_the_replaced_file(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    net = yolo_io.load(write_weights(tmp_path / "a.weights", cfg), cfg)
    target = tmp_path / "b.weights"
    target.write_bytes(b"")
    target.chmod(0o640)
    yolo_io.save(target, net)
    assert target.stat().st_mode & 0o777 == 0o640


def test_errors_of_the_file_system(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    net = yolo_io.load(write_weights(tmp_path / "a.weights", cfg), cfg)
    with pytest.raises(IsADirectoryError):
        yolo_io.save(tmp_path, net)
    with pytest.raises(FileNotFoundError):
        yolo_io.save(tmp_path / "no" / "such" / "x.weights", net)


_WRITER = """
import sys, time, yolo_io
net = yolo_io.load(sys.argv[1], sys.argv[2])
slow = lambda done, total, what: time.sleep(0.05)
print("start", flush=True)
arrays = {layer.index: dict(layer.params) for layer in net}  # written layer by layer
yolo_io.save(sys.argv[3], arrays, sys.argv[2], progress=slow)
"""


def test_killed_mid_save_leaves_the_target_intact(tmp_path: Path) -> None:
    cfg = tmp_path / "big.cfg"
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n" + "[convolutional]\nfilters=64\n"
                   "size=3\npad=1\nactivation=linear\n" * 40)
    weights = write_weights(tmp_path / "w.weights", cfg)
    target = tmp_path / "target.weights"
    target.write_bytes(b"precious")
    env = {**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"}
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(weights), str(cfg), str(target)],
                            stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    with proc.stdout:
        assert proc.stdout.readline().strip() == b"start"
    deadline = time.monotonic() + 30
    while not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]:
        assert time.monotonic() < deadline, "no temporary file appeared"
        time.sleep(0.01)
    time.sleep(0.2)  # mid-save: some layers written
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert target.read_bytes() == b"precious"


_BIG_CFG = "[net]\nwidth=8\nheight=8\nchannels=512\n" + (
    "[convolutional]\nfilters=512\nsize=3\npad=1\nactivation=linear\n" * 8)  # 75.5 MB


def test_core_copy_reports_progress_and_stops_on_an_exception(tmp_path: Path) -> None:
    cfg = tmp_path / "big.cfg"
    cfg.write_text(_BIG_CFG)
    weights = write_weights(tmp_path / "w.weights", cfg, sparse=True)
    net = yolo_io.load(weights, cfg)
    seen: list[tuple[int, int, str]] = []
    yolo_io.save(tmp_path / "copy.weights", net, progress=lambda *event: seen.append(event))
    size = weights.stat().st_size
    done = [d for d, _, _ in seen]
    assert len(seen) > 3 and done == sorted(done) and done[-1] == size
    assert {total for _, total, _ in seen} == {size}
    assert filecmp.cmp(weights, tmp_path / "copy.weights", shallow=False)

    class Stop(Exception):
        pass

    def stop(written: int, total: int, what: str) -> None:
        raise Stop(written)

    target = tmp_path / "target.weights"
    target.write_bytes(b"precious")
    for save in (yolo_io.save, yolo_io.save_safetensors):
        with pytest.raises(Stop):
            save(target, net, progress=stop)
        assert target.read_bytes() == b"precious"
        assert [p.name for p in tmp_path.glob("target*")] == ["target.weights"]
        assert not list(tmp_path.glob(".yolo_io-*"))


_INTERRUPTED = """
import signal, sys, threading, time, traceback
from pathlib import Path
import yolo_io
net = yolo_io.load(sys.argv[1], sys.argv[2])
target = Path(sys.argv[3])
class Alarm(Exception):
    pass
def on_alarm(signum, frame):
    temporary, = target.parent.glob(".yolo_io-*.tmp")
    raise Alarm(temporary.stat().st_size)
signal.signal(signal.SIGALRM, on_alarm)
def copying():
    # past the 20-byte header: the core's copy has started
    try:
        return any(p.stat().st_size > 20 for p in target.parent.glob(".yolo_io-*.tmp"))
    except FileNotFoundError:
        return False
def alarm_once_writing():
    while not copying():
        time.sleep(0.0002)
    signal.pthread_kill(threading.main_thread().ident, signal.SIGALRM)
threading.Thread(target=alarm_once_writing, daemon=True).start()
try:
    yolo_io.save(target, net)
except Alarm as e:
    print(e.args[0], traceback.extract_tb(e.__traceback__)[-2].line)
"""


def test_a_signal_stops_the_core_copy(tmp_path: Path) -> None:
    """No progress callback: the core still lets Python handle a signal
    (Ctrl-C, here SIGALRM) between parts, and the save is abandoned."""
    cfg = tmp_path / "big.cfg"
    cfg.write_text(_BIG_CFG)
    weights = write_weights(tmp_path / "w.weights", cfg, sparse=True)
    target = tmp_path / "target.weights"
    target.write_bytes(b"precious")
    env = {**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"}
    out = subprocess.run([sys.executable, "-c", _INTERRUPTED, str(weights), str(cfg), str(target)],
                         capture_output=True, text=True, env=env, timeout=120, check=True)
    # Raised by the handler, which the core ran from inside the copy: the
    # temporary file then held only part of the data.
    written, line = out.stdout.split(maxsplit=1)
    assert "write_layers" in line, out.stdout + out.stderr
    assert int(written) < weights.stat().st_size - (8 << 20)
    assert target.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.glob("target*")] == ["target.weights"]
    assert not list(tmp_path.glob(".yolo_io-*"))


_FULL_DISK = """
import resource, sys, yolo_io
net = yolo_io.load(sys.argv[1], sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[4]), int(sys.argv[4])))
try:
    yolo_io.save(sys.argv[3], net, header=(0, 1, 0, 0))
except OSError as err:
    print(type(err).__name__, err.errno, err)
"""


def test_full_disk_raises_and_leaves_the_target(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    weights = write_weights(tmp_path / "w.weights", cfg)
    target = tmp_path / "target.weights"
    target.write_bytes(b"precious")
    env = {**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"}
    # RLIMIT_FSIZE: writing past 100 bytes fails with EFBIG (SIGXFSZ ignored),
    # as a full disk fails with ENOSPC.
    proc = subprocess.run([sys.executable, "-c", "import signal; signal.signal(signal.SIGXFSZ, "
                           "signal.SIG_IGN)\n" + _FULL_DISK, str(weights), str(cfg), str(target),
                           "100"], capture_output=True, text=True, env=env, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OSError 27 ") and str(target) in proc.stdout, proc.stdout
    assert target.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("naming", ["yolo_io", "darknet2pytorch", "ultralytics"])
def test_state_dict_round_trip(tmp_path: Path, naming: str) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG.replace("groups=2\n", "", 1))  # darknet2pytorch: no grouped conv
    original = write_weights(tmp_path / "a.weights", cfg, seed=8, seen=5)
    net = yolo_io.load(original, cfg)
    state = net.state_dict(naming=naming)
    out = yolo_io.save(tmp_path / "b.weights", state, cfg, header=net.header)
    back = yolo_io.load(out, cfg)
    for a, b in zip(net, back, strict=True):
        for name, array in a.params.items():
            if name == "rolling_variance" and naming == "ultralytics":
                # var + 1e-5 - 1e-4 and back in float64, rounded to float32 twice
                np.testing.assert_allclose(b.params[name], array, rtol=0,
                                           atol=float(np.spacing(np.float32(array.max()))))
            else:
                np.testing.assert_array_equal(b.params[name], array)


def test_state_dict_in_an_unknown_naming(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    with pytest.raises(yolo_io.ConversionError, match="no naming yolo_io knows"):
        yolo_io.save(tmp_path / "x.weights", {"backbone.conv1.weight": np.zeros(1)}, cfg)


# -- what an adversarial review found ---------------------------------------------


def test_refuses_targets_that_are_not_regular_files(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    net = yolo_io.load(write_weights(tmp_path / "a.weights", cfg), cfg)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for call in (lambda: yolo_io.save(fifo, net), lambda: yolo_io.save_npz(fifo, net),
                 lambda: yolo_io.save_safetensors(fifo, net),
                 lambda: yolo_io.save_fused(fifo, tmp_path / "f.cfg", net)):
        with pytest.raises(OSError, match="not a regular file"):
            call()
        assert fifo.is_fifo()


def test_a_symlink_target_is_written_through(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    original = write_weights(tmp_path / "a.weights", cfg)
    net = yolo_io.load(original, cfg)
    real = tmp_path / "real.weights"
    real.write_bytes(b"old")
    link = tmp_path / "link.weights"
    link.symlink_to(real)
    yolo_io.save(link, net)
    assert link.is_symlink() and filecmp.cmp(real, original, shallow=False)


def test_share_index_state_dict_round_trip(tmp_path: Path) -> None:
    cfg = SHARED_CFG / "resnet152_trident.cfg"
    if not cfg.is_file():
        pytest.skip("the corpus is not beside the checkout")
    original = write_weights(tmp_path / "a.weights", cfg, seed=1, sparse=False)
    net = yolo_io.load(original, cfg)
    try:
        for naming in ("yolo_io", "ultralytics"):
            out = yolo_io.save(tmp_path / "b.weights", net.state_dict(naming=naming), cfg,
                               header=net.header)
            assert filecmp.cmp(original, out, shallow=False), naming
    finally:
        net.close()
        for name in ("a.weights", "b.weights"):
            (tmp_path / name).unlink(missing_ok=True)


def test_header_values_out_of_range(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    net = yolo_io.load(write_weights(tmp_path / "a.weights", cfg), cfg)
    with pytest.raises(ValueError, match="seen must be in"):
        yolo_io.save(tmp_path / "b.weights", net, seen=2**64)
    with pytest.raises(ValueError, match="do not fit the header's int32"):
        yolo_io.save(tmp_path / "b.weights", net, header=(2**31, 0, 0))


def test_a_fused_state_dict_is_named_as_such(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    net = yolo_io.load(write_weights(tmp_path / "a.weights", cfg), cfg)
    with pytest.raises(yolo_io.ConversionError, match="a fused state dict"):
        yolo_io.save(tmp_path / "b.weights", net.state_dict(fuse=True), cfg)


# -- issue 22: one header rule, integer headers, temporary names ---------------------


def test_a_negative_revision_round_trips(tmp_path: Path) -> None:
    """darknet reads the revision as an int32 and never interprets it (AlexeyAB's
    load_weights_upto): any value loads, and every writer writes it back."""
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    original = write_weights(tmp_path / "a.weights", cfg, version=(0, 2, -1), seed=2)
    net = yolo_io.load(original, cfg)
    assert net.header.revision == -1
    assert filecmp.cmp(yolo_io.save(tmp_path / "b.weights", net), original, shallow=False)
    raw = yolo_io.load(yolo_io.save_safetensors(tmp_path / "b.safetensors", net))
    assert raw.header.revision == -1
    assert filecmp.cmp(yolo_io.save(tmp_path / "c.weights", raw), original, shallow=False)
    fused, _ = yolo_io.save_fused(tmp_path / "f.weights", tmp_path / "f.cfg", net)
    assert yolo_io.load(fused, tmp_path / "f.cfg").header.revision == -1
    out = yolo_io.save(tmp_path / "d.weights", net, header=(0, 2, -2**31, 7))
    assert yolo_io.load(out, cfg).header[:4] == (0, 2, -2**31, 7)


def test_a_negative_major_is_refused_on_load_and_on_save(tmp_path: Path) -> None:
    """The same rule, from the core, both ways: a negative major or minor."""
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    bad = write_weights(tmp_path / "a.weights", cfg, version=(-1, 2, 0))
    with pytest.raises(yolo_io.FormatError, match="negative version"):
        yolo_io.load(bad, cfg)
    net = yolo_io.load(write_weights(tmp_path / "b.weights", cfg), cfg)
    for header in ((-1, 2, 0), (0, -2, 0)):
        with pytest.raises(ValueError, match="negative version"):
            yolo_io.save(tmp_path / "c.weights", net, header=header)
    with pytest.raises(ValueError, match="int32"):
        yolo_io.save(tmp_path / "c.weights", net, header=(0, 2, 2**31))
    assert not (tmp_path / "c.weights").exists()


@pytest.mark.parametrize("header", [(0.5, 2.7, 5), (0, 2, 5.0), (True, 2, 5), (0, 2, "5"),
                                    (0, 2, 5, 1.5)])
def test_header_parts_must_be_integers(tmp_path: Path, header: tuple[object, ...]) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    net = yolo_io.load(write_weights(tmp_path / "a.weights", cfg), cfg)
    with pytest.raises(TypeError, match="must be an integer"):
        yolo_io.save(tmp_path / "b.weights", net, header=header)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seen must be an integer"):
        yolo_io.save(tmp_path / "b.weights", net, seen=2.0)  # type: ignore[arg-type]
    assert not (tmp_path / "b.weights").exists()
    out = yolo_io.save(tmp_path / "b.weights", net, header=(np.int32(0), 2, np.int64(5)))
    assert yolo_io.load(out, cfg).header[:3] == (0, 2, 5)


def _name_max(folder: Path) -> int:
    return os.pathconf(folder, "PC_NAME_MAX")


def test_names_of_any_valid_length_are_written(tmp_path: Path) -> None:
    """The temporary is a fixed-length name in the target's folder: every
    name that fits the folder can be written (255 bytes here), by every
    writer, and nothing is left behind."""
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    net = yolo_io.load(write_weights(tmp_path / "a.weights", cfg, realistic=True), cfg)
    longest = _name_max(tmp_path)

    def name(suffix: str, stem: str = "n") -> Path:
        return tmp_path / (stem * (longest - len(suffix)) + suffix)

    yolo_io.save(name(".weights"), net)
    yolo_io.save(name(".weights", "u"), net, upto=2)
    yolo_io.save_safetensors(name(".safetensors"), net)
    yolo_io.save_safetensors(name(".safetensors", "f"), net, fuse=True)
    yolo_io.save_npz(name(".npz"), net)
    w, c = yolo_io.save_fused(name(".weights", "w"), name(".cfg", "c"), net)
    yolo_io.load(w, c)
    pytest.importorskip("onnx")
    from yolo_io.onnx import export

    export(name(".onnx"), net)
    pytest.importorskip("matplotlib")
    from yolo_io._diagnosis.doctor import plot

    plot(net, name(".png"))
    written = [p for p in tmp_path.iterdir() if len(p.name) == longest]
    assert len(written) == 9
    assert not list(tmp_path.glob(".yolo_io-*"))
    with pytest.raises(OSError, match="too long"):
        yolo_io.save(name(".weights", "x").with_name("x" * (longest + 1)), net)


_REWRITE_MAPPED = """
import sys, numpy as np, yolo_io
from yolo_io.testing import write_weights
net = yolo_io.load(sys.argv[1], sys.argv[2])
view = next(iter(net[0].params.values()))
before = float(np.sum(view))
write_weights(sys.argv[1], sys.argv[2], layers=0)  # the same name, a shorter file
print(float(np.sum(view)) == before)
"""


def test_write_weights_replaces_a_mapped_file_atomically(tmp_path: Path) -> None:
    """write_weights writes a temporary file and renames it, as save() does:
    a Network that maps the old file keeps its bytes (no SIGBUS), and an
    interrupted call leaves the old file as it was."""
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    weights = write_weights(tmp_path / "w.weights", cfg, seed=1)
    env = {**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"}
    proc = subprocess.run([sys.executable, "-c", _REWRITE_MAPPED, str(weights), str(cfg)],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc
    assert weights.stat().st_size == yolo_io.parse_cfg(cfg).expected_size(layers=0)
    # interrupted mid-write: the old bytes stay, no temporary is left
    before = weights.read_bytes()

    class Interrupted(Exception):
        pass

    class Failing:
        def standard_normal(self, *args: object, **kwargs: object) -> object:
            raise Interrupted

    with pytest.MonkeyPatch.context() as mp:  # the header is written, then this fails
        mp.setattr(np.random, "default_rng", lambda seed: Failing())
        with pytest.raises(Interrupted):
            write_weights(weights, cfg, seed=2)
    assert weights.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.cfg", "w.weights"]
    # sparse files too, through a symbolic link to the target
    link = tmp_path / "link.weights"
    link.symlink_to(weights)
    write_weights(link, cfg, sparse=True)
    assert link.is_symlink()
    assert weights.stat().st_size == yolo_io.parse_cfg(cfg).expected_size()
    assert not any(weights.read_bytes()[20:])


def test_arrays_are_refused_over_the_file_they_are_mapped_from(tmp_path: Path) -> None:
    """save(w, {i: dict(layer.params)}, cfg, upto=2) cut the only copy of the
    arrays' bytes (review of issue 22): their base names the mapped file."""
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    weights = write_weights(tmp_path / "w.weights", cfg, seed=4)
    before = weights.read_bytes()
    net = yolo_io.load(weights, cfg)
    arrays = {layer.index: dict(layer.params) for layer in net}
    link = tmp_path / "link.weights"
    link.symlink_to(weights)
    for target in (weights, link, str(weights).encode()):
        with pytest.raises(yolo_io.OutputIsInputError,
                           match="is the file the arrays are mapped from") as err:
            yolo_io.save(target, arrays, cfg, upto=2)
        assert err.value.input == str(weights)
    assert weights.read_bytes() == before
    # a copy, or another file, is fine
    copies = {i: {k: np.array(v) for k, v in p.items()} for i, p in arrays.items()}
    yolo_io.save(weights, copies, cfg)
    assert weights.read_bytes() == before
    yolo_io.save(tmp_path / "other.weights", arrays, cfg)
    with yolo_io.load(weights, cfg, copy=True) as copied:
        own = {layer.index: dict(layer.params) for layer in copied}
        yolo_io.save(weights, own, cfg)  # a private copy maps no file
    assert weights.read_bytes() == before
