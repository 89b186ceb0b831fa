"""Hostile inputs (issue 14): every class of bad input gets a typed error, and
nothing crashes, hangs or allocates what a hostile number asks for.

Each case runs in a fresh Python process, so that a crash (a signal), an
abort or a hang fails that case alone and shows as such. The process prints
what the call gave (its result, or its exception's class, bases and message)
and how much the call grew the peak RSS, which must stay small: no
allocation is sized by a cfg or header number before that number is checked
against the file.

The README's "Hostile inputs" table lists the same classes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PRELUDE = r'''
import json, os, resource, struct, sys
import yolo_io
from yolo_io.testing import write_weights

NET = "[net]\nwidth=16\nheight=16\nchannels=3\n"


def conv(filters=4, size=3, stride=1, extra=""):
    return (f"[convolutional]\nbatch_normalize=1\nfilters={filters}\nsize={size}\n"
            f"stride={stride}\npad=1\nactivation=leaky\n{extra}")


SMALL = NET + conv() + conv(filters=2, size=1)


def small_model():
    write_weights("small.weights", SMALL)
    return "small.weights", SMALL


def rewrite_safetensors(source, target, edit):
    """A copy of a safetensors file with its JSON header edited by edit(header)."""
    data = open(source, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    edit(header)
    text = json.dumps(header).encode()
    text += b" " * (-(8 + len(text)) % 8)
    open(target, "wb").write(struct.pack("<Q", len(text)) + text + data[8 + n:])
    return target


def status_bytes(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def report(call):
    # The peak RSS is reset to the current RSS first, so the growth is the
    # call's own, whatever the setup allocated and freed before it.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = status_bytes("VmRSS:")
    try:
        result = call()
        out = {"result": "ok", "value": repr(result)[:200]}
    except BaseException as err:  # the case decides what it expected
        out = {"result": type(err).__name__, "bases": [c.__name__ for c in type(err).__mro__],
               "message": str(err), "errno": getattr(err, "errno", None)}
    out["peak_growth_mb"] = (status_bytes("VmHWM:") - before) / (1 << 20)
    print(json.dumps(out))
'''

# name: (code, expected exception class or "ok", regex its message or value must match)
CASES: dict[str, tuple[str, str, str]] = {
    # -- numbers in the cfg ------------------------------------------------
    "filters=2147483647": (
        ("open('w', 'wb').write(yolo_io.testing.header_bytes() + bytes(84))\n"
        "report(lambda: yolo_io.load('w', NET + conv(filters=2147483647)))"),
        "WeightsSizeError", r"the cfg needs 266287972248 bytes .* the file has 104 bytes"),
    "filters overflow the network": (
        "report(lambda: yolo_io.parse_cfg(NET + conv(filters=2000000000) * 2))",
        "CfgError", r"<string>:\d+: \[convolutional\] .*(overflow|too large)"),
    "size=0": ("report(lambda: yolo_io.parse_cfg(NET + conv(size=0)))",
               "CfgError", r"<string>:8: \[convolutional\] has size=0; it must be at least 1"),
    "stride=0": ("report(lambda: yolo_io.parse_cfg(NET + conv(stride=0)))",
                 "CfgError", r"<string>:9: \[convolutional\] has stride=0"),
    "groups that do not divide the channels": (
        "report(lambda: yolo_io.parse_cfg(NET + conv(extra='groups=2\\n')))",
        "CfgError", r"<string>:12: .*groups=2, which does not divide its 3 input channels"),
    "groups that do not divide the filters": (
        ("report(lambda: yolo_io.parse_cfg(NET.replace('channels=3', 'channels=4') "
        "+ conv(filters=3, extra='groups=2\\n')))"),
        "CfgError", r"groups=2, which does not divide its filters=3"),
    "[crnn] groups that do not divide its convolutions": (
        "report(lambda: yolo_io.parse_cfg(NET + '[crnn]\\noutput=4\\nhidden=6\\ngroups=2\\n'))",
        "CfgError", r"<string>:8: \[crnn\] has groups=2, which does not divide 3, the channels"),
    "[conv_lstm] dilation=0": (
        "report(lambda: yolo_io.parse_cfg(NET + '[conv_lstm]\\noutput=4\\nsize=3\\ndilation=0\\n'))",
        "CfgError", r"<string>:8: \[conv_lstm\] has dilation=0; it must be at least 1"),
    "width=0": ("report(lambda: yolo_io.parse_cfg(NET.replace('width=16', 'width=0') + conv()))",
                "CfgError", r"\[net\] sets no input size"),
    "filters=4294967300": (  # darknet's atoi() gives 4; was read as 2147483647
        "report(lambda: yolo_io.parse_cfg(NET + conv(filters=4294967300)))",
        "CfgError", (r"<string>:7: \[convolutional\] has filters=4294967300, outside the 32-bit "
                    r"int darknet reads it into \(its atoi\(\) would give 4\)")),
    "size=-2147483649": (
        "report(lambda: yolo_io.parse_cfg(NET + conv(size=-2147483649)))",
        "CfgError", r"<string>:8: .*size=-2147483649, outside the 32-bit int"),
    "a mask index past int32": (
        "report(lambda: yolo_io.parse_cfg(NET + conv(filters=6) + '[yolo]\\nclasses=1\\nmask=0,99999999999\\n'))",
        "CfgError", r"<string>:14: \[yolo\] has mask=99999999999, outside the 32-bit int"),
    "a route index past int32": (
        "report(lambda: yolo_io.parse_cfg(SMALL + '[route]\\nlayers=-1,4294967296\\n'))",
        "CfgError", r"\[route\] has layers=4294967296, outside the 32-bit int .*would give 0"),
    "a float of 1e999": (  # atof() gives inf
        "report(lambda: yolo_io.parse_cfg(NET + conv() + '[dropout]\\nprobability=1e999\\n'))",
        "CfgError", (r"<string>:13: \[dropout\] has probability=1e999, which is not a finite "
                    r"float32 \(darknet reads inf\)")),
    "a float past float32": (  # atof() gives -1e39; darknet stores it as a float: -inf
        "report(lambda: yolo_io.parse_cfg(NET + conv(filters=6) + '[yolo]\\nclasses=1\\nscale_x_y=-1e39\\n'))",
        "CfgError", (r"<string>:14: \[yolo\] has scale_x_y=-1e39, which is not a finite "
                     r"float32 \(darknet reads -inf\)")),
    "the largest float32 is finite": (
        "report(lambda: yolo_io.parse_cfg(NET + conv() + '[dropout]\\nprobability=3.4e38\\n')[1].attrs)",
        "ok", r"probability=3\.4e\+38"),
    "an anchor of nan": (
        ("report(lambda: yolo_io.parse_cfg(NET + conv(filters=6) + "
         "'[yolo]\\nclasses=1\\nnum=1\\nanchors=nan,3\\n'))"),
        "CfgError", r"\[yolo\] has anchors=nan, which is not a finite float32"),
    "a 0-sized head": (
        "report(lambda: yolo_io.parse_cfg(NET + conv(filters=5) + '[yolo]\\nmask=\\nnum=0\\n'))",
        "CfgError", r"\[yolo\] has num=0; it must be at least 1"),
    "negative classes": (
        "report(lambda: yolo_io.parse_cfg(NET + conv(filters=4) + '[yolo]\\nclasses=-1\\n'))",
        "CfgError", r"\[yolo\] has classes=-1; it must be at least 0"),
    # -- layer references --------------------------------------------------
    "route out of range": ("report(lambda: yolo_io.parse_cfg(SMALL + '[route]\\nlayers=9\\n'))",
                           "CfgError", r"\[route\] has layers referring to layer 9"),
    "route to itself": ("report(lambda: yolo_io.parse_cfg(SMALL + '[route]\\nlayers=2\\n'))",
                        "CfgError", r"referring to layer 2 -> 2, but only layers 0\.\.1"),
    "route to a later layer": (
        "report(lambda: yolo_io.parse_cfg(SMALL + '[route]\\nlayers=3\\n' + conv()))",
        "CfgError", r"referring to layer 3 -> 3"),
    "shortcut to a later layer": (
        "report(lambda: yolo_io.parse_cfg(SMALL + '[shortcut]\\nfrom=4\\n' + conv()))",
        "CfgError", r"\[shortcut\] has from referring to layer 4"),
    # -- sizes and bytes of the cfg text -----------------------------------
    "a million sections": (
        "report(lambda: len(yolo_io.parse_cfg(NET + '[maxpool]\\n' * 10**6)))",
        "CfgError", r"<string>:100005: this section makes more than 100000 layers"),
    "100,000 sections": (  # the most a cfg may have: parsed and planned
        "report(lambda: len(yolo_io.parse_cfg(NET + '[maxpool]\\nsize=1\\nstride=1\\n' * 10**5)))",
        "ok", r"^100000$"),
    "a 1 MB line": (
        ("import warnings\n"
         "def longest_warning():\n"
         "    with warnings.catch_warnings(record=True) as seen:\n"
         "        warnings.simplefilter('always')\n"
         "        yolo_io.parse_cfg(SMALL + 'activation=' + 'x' * (1 << 20) + '\\n')\n"
         "    return max(len(str(w.message)) for w in seen)\n"
         "report(longest_warning)"),
        "ok", r"^\d{2,3}$"),  # the warning quotes the value cut short, not 1 MB of it
    "8 million lines without '='": (
        "report(lambda: yolo_io.parse_cfg('[net]\\n' + 'x\\n' * (8 * 10**6)))",
        "CfgError", r"<string>:1000002: this line makes more than 1000000 options"),
    "100,000 lines with empty values": (  # warnings: the first 1,000 kept, and a note
        ("import warnings\n"
         "def kept_warnings():\n"
         "    with warnings.catch_warnings():\n"
         "        warnings.simplefilter('ignore')\n"
         "        found = yolo_io.parse_cfg(SMALL + 'x=\\n' * 10**5).warnings\n"
         "    return len(found), found[-1]\n"
         "report(kept_warnings)"),
        "ok", r"^\(1001, '<string>: the first 1000 warnings are shown; the rest are not'\)$"),
    "a NUL byte": ("report(lambda: yolo_io.parse_cfg(SMALL + 'filters=4\\0junk\\n'))",
                   "CfgError", r"<string>:19: this line has a NUL byte at column 10"),
    "a UTF-16 cfg": (
        ("open('u.cfg', 'wb').write(SMALL.encode('utf-16'))\n"
         "report(lambda: yolo_io.parse_cfg('u.cfg'))"),
        "CfgError", r"u\.cfg:1: the file is UTF-16 .*save it as UTF-8"),
    "a UTF-16 cfg of an odd length": (  # (size - 16) % 4 == 0: once sniffed as weights
        ("open('u.cfg', 'wb').write((SMALL + '#').encode('utf-16'))\n"
         "report(lambda: yolo_io.parse_cfg('u.cfg'))"),
        "CfgError", r"u\.cfg:1: the file is UTF-16"),
    "a 17 MiB cfg file": (
        ("open('big.cfg', 'wb').write(SMALL.encode() + b'#' * (17 << 20))\n"
         "report(lambda: yolo_io.parse_cfg('big.cfg'))"),
        "CfgError", r"big\.cfg is \d+ bytes or more, more than the 16 MiB a \.cfg may have"),
    "17 MiB of cfg text": (
        "report(lambda: yolo_io.parse_cfg(SMALL + '#' * (17 << 20)))",
        "CfgError", r"<string> is \d+ bytes of text, more than the 16 MiB"),
    # -- what the paths name -------------------------------------------------
    "a directory as the cfg": ("os.mkdir('d')\nreport(lambda: yolo_io.parse_cfg('d'))",
                               "IsADirectoryError", r"Is a directory"),
    "a directory as the weights": ("os.mkdir('d')\nreport(lambda: yolo_io.load('d', SMALL))",
                                   "IsADirectoryError", r"Is a directory"),
    "a FIFO with no writer as the cfg": (  # read as a stream: empty, never blocks
        "os.mkfifo('f')\nreport(lambda: yolo_io.parse_cfg('f'))",
        "CfgError", r"f: no \[net\] section"),
    "a socket as the cfg": (
        ("import socket\ns = socket.socket(socket.AF_UNIX)\ns.bind('sock')\n"
         "report(lambda: yolo_io.parse_cfg('sock'))"),
        "CfgError", r"sock is a socket, not a regular file"),
    "a FIFO as the weights": ("os.mkfifo('f')\nreport(lambda: yolo_io.load('f', SMALL))",
                              "FormatError", r"f is a FIFO \(named pipe\), not a regular file"),
    "a device as the cfg": ("report(lambda: yolo_io.parse_cfg('/dev/zero'))",
                            "CfgError", r"/dev/zero is a character device"),
    "a device as the weights": ("report(lambda: yolo_io.load('/dev/zero', SMALL))",
                                "FormatError", r"/dev/zero is a character device"),
    "a FIFO as the .names of diagnose()": (
        ("os.mkfifo('n')\nw, c = small_model()\n"
        "report(lambda: yolo_io.diagnose(w, c, names='n'))"),
        "OSError", r"not a regular file \(a FIFO, device or socket\)"),
    "an empty cfg": ("open('e.cfg', 'w').close()\nreport(lambda: yolo_io.parse_cfg('e.cfg'))",
                     "CfgError", r"no \[net\] section"),
    "an empty weights file": ("open('e', 'w').close()\nreport(lambda: yolo_io.load('e', SMALL))",
                              "FormatError", r"it is empty: 0 bytes"),
    "an unreadable weights file": (
        "w, c = small_model()\nos.chmod(w, 0)\nreport(lambda: yolo_io.load(w, c))",
        "PermissionError", r"Permission denied"),
    "a missing file": ("report(lambda: yolo_io.load('nowhere.weights', SMALL))",
                       "FileNotFoundError", r"nowhere\.weights"),
    # -- safetensors ---------------------------------------------------------
    "safetensors: a header length past the end": (
        ("open('h.safetensors', 'wb').write(struct.pack('<Q', 2**62) + b'{}')\n"
        "report(lambda: yolo_io.load('h.safetensors'))"),
        "FormatError", r"header length of 4611686018427387904 bytes"),
    "safetensors: huge offsets": (
        ("w, c = small_model()\n"
        "src = yolo_io.save_safetensors('s.safetensors', yolo_io.load(w, c))\n"
        "def edit(h): h['0.biases']['data_offsets'] = [0, 2**62]\n"
        "report(lambda: yolo_io.load(rewrite_safetensors(src, 'x.safetensors', edit)))"),
        "FormatError", r"tensor \"0\.biases\" .*(past the end|needs)"),
    "safetensors: overlapping tensors": (
        ("w, c = small_model()\n"
        "src = yolo_io.save_safetensors('s.safetensors', yolo_io.load(w, c))\n"
        "def edit(h): h['0.scales']['data_offsets'] = h['0.biases']['data_offsets']\n"
        "report(lambda: yolo_io.load(rewrite_safetensors(src, 'x.safetensors', edit)))"),
        "FormatError", r"overlaps"),
    "safetensors: a cfg that does not match its tensors": (
        ("w, c = small_model()\n"
        "src = yolo_io.save_safetensors('s.safetensors', yolo_io.load(w, c))\n"
        "def edit(h): h['__metadata__']['cfg'] = NET + conv(filters=8) + conv(filters=2, size=1)\n"
        "report(lambda: yolo_io.load(rewrite_safetensors(src, 'x.safetensors', edit)))"),
        "FormatError", r"\(its cfg\).*does not match|does not match.*\(its cfg\)"),
    "safetensors: 2 million metadata keys": (  # 29 MB: 150-290 MB and 2.5 s before
        ("w, c = small_model()\n"
        "src = yolo_io.save_safetensors('s.safetensors', yolo_io.load(w, c))\n"
        "def edit(h): h['__metadata__'].update((f'k{i}', '') for i in range(2 * 10**6))\n"
        "path = rewrite_safetensors(src, 'x.safetensors', edit)\n"
        "report(lambda: yolo_io.load(path))"),
        "FormatError", (r"x\.safetensors is not a valid safetensors file: its header has more "
                       r"than 10000 metadata keys")),
    "safetensors: a million tensors": (
        ("w, c = small_model()\n"
        "src = yolo_io.save_safetensors('s.safetensors', yolo_io.load(w, c))\n"
        "def edit(h): h.update((f't{i}', {'dtype': 'F32', 'shape': [0], 'data_offsets': [0, 0]})\n"
        "                      for i in range(10**6))\n"
        "path = rewrite_safetensors(src, 'x.safetensors', edit)\n"
        "report(lambda: yolo_io.load(path))"),
        "FormatError", (r"x\.safetensors is not a valid safetensors file: its header has more "
                       r"than 200000 tensors")),
    "safetensors: a shape of a million dimensions": (
        ("w, c = small_model()\n"
        "src = yolo_io.save_safetensors('s.safetensors', yolo_io.load(w, c))\n"
        "def edit(h): h['0.biases']['shape'] = [1] * 10**6\n"
        "path = rewrite_safetensors(src, 'x.safetensors', edit)\n"
        "report(lambda: yolo_io.load(path))"),
        "FormatError", r"has a shape of more than 64 dimensions \(tensor \"0\.biases\"\)"),
    # -- save ----------------------------------------------------------------
    "save into a read-only folder": (
        ("w, c = small_model()\nos.mkdir('ro')\nos.chmod('ro', 0o555)\n"
        "report(lambda: yolo_io.save('ro/out.weights', yolo_io.load(w, c)))"),
        "PermissionError", r"ro/out\.weights"),
    "save where no file can be created (/sys)": (  # EACCES here; EROFS where /sys is ro
        ("w, c = small_model()\n"
         "report(lambda: yolo_io.save('/sys/out.weights', yolo_io.load(w, c)))"),
        "OSError", r"/sys/out\.weights"),
    "save over a directory": (
        ("w, c = small_model()\nos.mkdir('d')\nopen('d/keep', 'w').write('kept')\n"
        "report(lambda: yolo_io.save('d', yolo_io.load(w, c)))\n"
        "assert open('d/keep').read() == 'kept'"),
        "IsADirectoryError", r"d"),
    "save over the file its arrays are mapped from": (
        ("w, c = small_model()\nbefore = open(w, 'rb').read()\nnet = yolo_io.load(w, c)\n"
        "arrays = {layer.index: dict(layer.params) for layer in net}\n"
        "report(lambda: yolo_io.save(w, arrays, c, upto=2))\n"
        "assert open(w, 'rb').read() == before"),
        "OutputIsInputError", r"^small\.weights is the file the arrays are mapped from: "),
}

NEEDS_NON_ROOT = {"an unreadable weights file", "save into a read-only folder"}
# Root reads and writes through file permissions. As root (CI), these cases run
# without the capabilities that do so (util-linux's setpriv drops them before
# Python starts): then root is held to the permission bits like any user.
SETPRIV = shutil.which("setpriv")
WITHOUT_DAC = ([SETPRIV, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]
               if SETPRIV else [])


def run_python(code: str, folder: Path, *,
               held_to_permissions: bool = False) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh Python process, in ``folder``; with
    ``held_to_permissions``, without root's file-permission capabilities."""
    prefix = WITHOUT_DAC if held_to_permissions and os.geteuid() == 0 else []
    return subprocess.run([*prefix, sys.executable, "-c", code], cwd=folder,
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"})


def run_case(code: str, folder: Path, *, held_to_permissions: bool = False) -> dict[str, object]:
    proc = run_python(PRELUDE + code, folder, held_to_permissions=held_to_permissions)
    assert proc.returncode == 0, (f"exit status {proc.returncode} (negative: killed by that "
                                  f"signal)\n{proc.stderr[-3000:]}")
    found: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input(name: str, tmp_path: Path) -> None:
    code, expected, pattern = CASES[name]
    if name in NEEDS_NON_ROOT and os.geteuid() == 0 and not SETPRIV:
        if os.environ.get("YOLO_IO_CI"):
            pytest.fail("root needs setpriv (util-linux) to run this case held to permissions")
        pytest.skip("root reads and writes through file permissions, and setpriv is missing")
    found = run_case(code, tmp_path, held_to_permissions=name in NEEDS_NON_ROOT)
    if expected == "ok":
        assert found["result"] == "ok", found
        assert re.search(pattern, str(found["value"])), found
    else:
        bases = found["bases"]
        assert isinstance(bases, list)
        assert expected in bases, found  # that class or a subclass
        assert "YoloIOError" in bases or "OSError" in bases, found
        assert re.search(pattern, str(found["message"]), re.DOTALL), found
    # Nothing sized by a hostile number. Copies of a 30 MB cfg text (a
    # million sections) take ~150 MB under AddressSanitizer; the most layers
    # a cfg may have, 100,000, ~250 MB once planned (more under it).
    limit = {"100,000 sections": 800, "a million sections": 300,
             "8 million lines without '='": 400,  # 304 under AddressSanitizer
             "safetensors: a million tensors": 200,  # 46 MB, 126 under AddressSanitizer
             "safetensors: 2 million metadata keys": 30}.get(name, 100)  # was 150-290 MB
    assert float(str(found["peak_growth_mb"])) < limit, found


FUZZ_CFG_SEEDS = sorted((Path(__file__).resolve().parent.parent / "fuzz" / "seeds" / "fuzz_cfg")
                        .glob("*.cfg"))


@pytest.mark.parametrize("seed", FUZZ_CFG_SEEDS, ids=[p.stem for p in FUZZ_CFG_SEEDS])
def test_fuzz_cfg_seed_is_refused(seed: Path, tmp_path: Path) -> None:
    """The cfgs of fuzz/seeds/fuzz_cfg (issue 27: sizes from cfg values whose
    sums and products overflowed int64, undefined behaviour that UBSan
    reports) are each a CfgError naming the file, the layer and its line, with
    the message their first line's ``# expect:`` regex gives. The fuzzers
    start from them (fuzz/make_corpus.py); ``.ci/sanitize`` runs this test."""
    first = seed.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{seed.name}: no '# expect: REGEX' first line"
    found = run_case(f"report(lambda: yolo_io.parse_cfg({str(seed)!r}))", tmp_path)
    assert found["result"] == "CfgError", found
    assert re.search(re.escape(str(seed)) + r":\d+: " + first[len("# expect: "):],
                     str(found["message"])), found
    assert float(str(found["peak_growth_mb"])) < 100, found


def test_there_are_fuzz_cfg_seeds() -> None:
    assert {p.stem for p in FUZZ_CFG_SEEDS} >= {"share_index", "deconv", "route"}


def test_a_cfg_from_a_pipe_is_read(tmp_path: Path) -> None:
    """yolo-io inspect <(curl ...): the cfg comes from a pipe whose writer is
    still writing; it is read to its end, as before the hostile-input checks."""
    code = PRELUDE + r'''
import subprocess
writer = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                           "for line in sys.argv[1].splitlines(True):\n"
                           "    sys.stdout.write(line); sys.stdout.flush(); time.sleep(0.01)",
                           SMALL], stdout=subprocess.PIPE)
report(lambda: len(yolo_io.parse_cfg(f"/dev/fd/{writer.stdout.fileno()}")))
writer.wait()
'''
    proc = run_python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["value"] == "2"


# -- a file that changes after it is loaded ------------------------------------

CHANGED = PRELUDE + r'''
import numpy as np
c = NET + conv(filters=256) + conv(filters=2, size=1)  # 28 KB of data: several pages
w = str(write_weights("big.weights", c))
original = open(w, "rb").read()
net = yolo_io.load(w, c, copy=COPY)
expected = {i: {k: np.array(v) for k, v in layer.params.items()} for i, layer in
            enumerate(yolo_io.load(w, c))}
CHANGE
'''


def run_changed(copy: bool, change: str, then: str, folder: Path) -> subprocess.CompletedProcess[str]:
    return run_python(CHANGED.replace("COPY", str(copy)).replace("CHANGE", change) + then, folder)


TRUNCATE = "os.truncate(w, 20)"
REWRITE = "open(w, 'r+b').write(original[:20] + bytes(len(original) - 20))"
READ_ALL = "print(all([np.array_equal(v, expected[i][k]) for i, layer in enumerate(net) " \
           "for k, v in layer.params.items()]))"  # a list: every array is read


def test_a_mapped_file_truncated_after_load_is_sigbus_on_read(tmp_path: Path) -> None:
    """The default, documented: the arrays are the file's pages, so reading
    a view held from before past a truncated end is SIGBUS (zeros up to the
    end of its last page), as with np.memmap. Views asked for afterwards and
    the writers raise a FormatError instead (tests/test_shrunk_file.py)."""
    import signal

    held = "views = [dict(layer.params) for layer in net]\n" + TRUNCATE
    proc = run_changed(False, held, "print(all([np.array_equal(v, expected[i][k]) for i, "
                       "layer in enumerate(views) for k, v in layer.items()]))", tmp_path)
    # Under the sanitizer suite, AddressSanitizer reports the SIGBUS and aborts.
    assert proc.returncode == -signal.SIGBUS or (
        proc.returncode != 0 and "AddressSanitizer: BUS" in proc.stderr), proc.stderr
    proc = run_changed(False, TRUNCATE, "report(lambda: yolo_io.save('out.weights', net))",
                       tmp_path)
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["result"] == "FormatError", found
    assert "out.weights" not in os.listdir(tmp_path)


@pytest.mark.parametrize("change", [TRUNCATE, REWRITE], ids=["truncated", "rewritten"])
def test_a_copied_file_is_a_snapshot(tmp_path: Path, change: str) -> None:
    """load(copy=True): the arrays, fusion and every writer see the bytes of
    the file as it was loaded, whatever happens to the file after."""
    proc = run_changed(True, change, READ_ALL + r'''
yolo_io.save("out.weights", net)
print(open("out.weights", "rb").read() == original)
st = yolo_io.save_safetensors("out.safetensors", net)
print(all([np.array_equal(v, expected[i][k]) for i, layer in enumerate(yolo_io.load(st))
           for k, v in layer.params.items()]))
written = yolo_io.load("out.weights", c)  # the original bytes, checked above
print(all([np.array_equal(a.fused()[0], b.fused()[0]) for a, b in zip(net, written)
           if a.fusion]))
''', tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True"] * 4, proc.stdout


def test_a_copied_safetensors_export_is_a_snapshot(tmp_path: Path) -> None:
    code = PRELUDE + r'''
import numpy as np
w, c = small_model()
st = str(yolo_io.save_safetensors("s.safetensors", yolo_io.load(w, c)))
expected = [{k: np.array(v) for k, v in layer.params.items()} for layer in yolo_io.load(st)]
net = yolo_io.load(st, copy=True)
os.truncate(st, 8)
print(all([np.array_equal(v, expected[i][k]) for i, layer in enumerate(net)
           for k, v in layer.params.items()]))
'''
    proc = run_python(code, tmp_path)
    assert proc.returncode == 0 and proc.stdout.split() == ["True"], proc.stderr
