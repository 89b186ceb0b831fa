"""A cfg is bytes, as darknet reads it: any encoding, a byte-order mark, or the
wrong file altogether gives a typed error naming the file, never a raw
UnicodeDecodeError. Each slip runs in a subprocess so that a crash cannot hide."""

from __future__ import annotations

import importlib
import os
import pickle
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import yolo_io
from yolo_io import _core
from yolo_io.testing import write_weights

NET = b"[net]\nwidth=8\nheight=8\nchannels=3\n"
CONV = b"[convolutional]\nfilters=4\nsize=1\n"
# What no message may show: control characters, C1 controls and invisible or
# blank code points (a byte that is not UTF-8 must show as the text \xNN).
HIDDEN = re.compile("[\x00-\x1f\x7f-\xa0\xad\u200b-\u200f\u2028-\u202f\u2060-\u206f\ufeff]")


def run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Runs `code` after `import yolo_io` in a fresh interpreter in `cwd`."""
    env = {**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, "-c", "import yolo_io\n" + code], cwd=cwd, env=env,
                          capture_output=True, text=True, encoding="utf-8", check=False,
                          timeout=120)


def ok(code: str, cwd: Path) -> str:
    """stdout of `code`, which must exit 0."""
    result = run(code, cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def raises(code: str, cwd: Path, name: str) -> str:
    """The message of the exception `code` dies with, which must be `name`."""
    result = run(code, cwd)
    assert result.returncode == 1, result.stderr
    last = result.stderr.rstrip("\n").splitlines()[-1]
    cls, _, message = last.partition(": ")
    assert cls.rsplit(".", 1)[-1] == name, result.stderr
    assert not HIDDEN.search(message), ascii(message)
    return message


def test_non_utf8_comment_on_its_own_line_loads(tmp_path: Path) -> None:
    (tmp_path / "w1252.cfg").write_bytes(NET + b"# caf\xe9 au lait\n" + CONV)
    out = ok("cfg = yolo_io.parse_cfg('w1252.cfg')\nprint(len(cfg), cfg[0].output_shape)", tmp_path)
    assert out.split() == ["1", "(4,", "8,", "8)"]


def test_non_utf8_inline_comment_is_part_of_the_value(tmp_path: Path) -> None:
    # darknet has no inline comments: the value is "255#caf\xe9", atoi gives 255.
    (tmp_path / "inline.cfg").write_bytes(NET + b"[convolutional]\nfilters=255 # caf\xe9\nsize=1\n")
    out = ok("cfg = yolo_io.parse_cfg('inline.cfg')\n"
             "print(ascii(cfg[0].options['filters']), cfg[0].output_shape)", tmp_path)
    assert out.split(maxsplit=1) == ["'255#caf\\\\xe9'", "(255, 8, 8)\n"]


def test_non_utf8_bytes_in_a_warning(tmp_path: Path) -> None:
    (tmp_path / "unused.cfg").write_bytes(NET + CONV + b"caf\xe9=cr\xe8me\n")
    message = raises("import warnings\nwarnings.simplefilter('error')\n"
                     "yolo_io.parse_cfg('unused.cfg')", tmp_path, "CfgWarning")
    assert message == ("unused.cfg:8: unused option 'caf\\xe9=cr\\xe8me' in [convolutional] "
                       "(darknet ignores it)")


def test_non_utf8_bytes_in_an_error(tmp_path: Path) -> None:
    (tmp_path / "before.cfg").write_bytes(b"caf\xe9=1\n" + NET + CONV)
    message = raises("yolo_io.parse_cfg('before.cfg')", tmp_path, "CfgError")
    assert message.startswith("before.cfg:1: option 'caf\\xe9=1' comes before the first [section]")
    out = ok("try:\n    yolo_io.parse_cfg('before.cfg')\nexcept yolo_io.CfgError as e:\n"
             "    print(e.path, e.line)", tmp_path)
    assert out.split() == ["before.cfg", "1"]


def test_non_utf8_bytes_in_a_section_name(tmp_path: Path) -> None:
    (tmp_path / "section.cfg").write_bytes(NET + b"[caf\xe9]\n")
    message = raises("yolo_io.parse_cfg('section.cfg')", tmp_path, "CfgError")
    assert message.startswith("section.cfg:5: unknown section [caf\\xe9]")


@pytest.mark.parametrize("text", [True, False], ids=["text", "path"])
def test_non_utf8_cfg_loads_with_weights(tmp_path: Path, text: bool) -> None:
    cfg = NET + b"# \xff\xfe\n[convolutional]\nfilters=2 ; \x80\nsize=1\n"
    (tmp_path / "m.cfg").write_bytes(cfg)
    ok("from yolo_io.testing import write_weights\n"
       "write_weights('m.weights', yolo_io.parse_cfg('m.cfg'))", tmp_path)
    arg = "open('m.cfg', encoding='utf-8', errors='surrogateescape').read()" if text else "'m.cfg'"
    out = ok(f"net = yolo_io.load('m.weights', {arg})\nprint(net[0].params['weights'].shape)",
             tmp_path)
    assert out.strip() == "(2, 3, 1, 1)"


BOM_WARNING = "starts with a UTF-8 byte-order mark (BOM), which darknet does not expect; skipped"


def test_bom_is_skipped_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "bom.cfg").write_bytes(b"\xef\xbb\xbf" + NET + CONV)
    out = ok("import warnings\nwith warnings.catch_warnings(record=True) as w:\n"
             "    warnings.simplefilter('always')\n    cfg = yolo_io.parse_cfg('bom.cfg')\n"
             "print(len(cfg), cfg.input_shape, ascii([str(x.message) for x in w]))", tmp_path)
    assert out.strip() == f"1 (3, 8, 8) ['bom.cfg:1: the cfg {BOM_WARNING}']"
    message = raises("import warnings\nwarnings.simplefilter('error')\n"
                     "yolo_io.parse_cfg('bom.cfg')", tmp_path, "CfgWarning")
    assert message == f"bom.cfg:1: the cfg {BOM_WARNING}"


@pytest.mark.parametrize("text", ["\ufeff[net]\nwidth=8\nheight=8\nchannels=3\n[maxpool]\n",
                                  "\ufeff[net] width=8 height=8 channels=3"], ids=["lines", "one-line"])
def test_bom_in_text(tmp_path: Path, text: str) -> None:
    """A str starting with U+FEFF is cfg text when it has a newline; without
    one it is a path (the rule: text only when it contains a newline)."""
    code = f"import warnings\nwarnings.simplefilter('error', yolo_io.CfgWarning)\nyolo_io.parse_cfg({text!r})"
    if "\n" not in text:
        assert "No such file" in raises(code, tmp_path, "FileNotFoundError")
        return
    message = raises(code, tmp_path, "CfgWarning")
    assert message.startswith("<string>:1: ")


def test_invisible_characters_in_an_error_are_shown(tmp_path: Path) -> None:
    # A BOM in the middle of the file, a zero-width space, a no-break space,
    # a word joiner and a control byte, before the first section.
    (tmp_path / "hidden.cfg").write_bytes(
        "\n\u200bwidth\u00a0=\u20608\ufeff\x01\n".encode() + NET + CONV)
    message = raises("yolo_io.parse_cfg('hidden.cfg')", tmp_path, "CfgError")
    assert message.startswith("hidden.cfg:2: option '\\u200bwidth\\u00a0=\\u20608\\ufeff\\x01' "
                              "comes before the first [section]")


def test_invisible_characters_in_layer_messages_are_shown(tmp_path: Path) -> None:
    # The layer builders' messages: an unknown section, an unused option and
    # an unknown activation.
    (tmp_path / "section.cfg").write_bytes(NET + "[conv\u200b]\n".encode())
    message = raises("yolo_io.parse_cfg('section.cfg')", tmp_path, "CfgError")
    assert message.startswith("section.cfg:") and "unknown section [conv\\u200b]" in message
    (tmp_path / "warn.cfg").write_bytes(
        NET + "[convolutional]\nfil\u00a0ters=3\nactivation=le\u200baky\n".encode())
    out = ok("import warnings\nwarnings.simplefilter('error')\n"
             "try:\n    yolo_io.parse_cfg('warn.cfg')\n"
             "except yolo_io.CfgWarning as w:\n    print(ascii(str(w)))\n", tmp_path)
    assert "unused option 'fil\\\\u00a0ters=3'" in out
    assert "activation 'le\\\\u200baky' in [convolutional] is unknown" in out


def test_text_passed_as_weights_is_shown_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "cfg.cfg").write_bytes(NET + CONV)
    # BOM, overlong '/', a UTF-16 surrogate, a stray continuation byte, an
    # emoji (visible: kept), a tag character (invisible).
    (tmp_path / "page.weights").write_bytes(
        b"\xef\xbb\xbf<p>\xc0\xaf\xed\xa0\x80\x80" + "\U0001f600\U000e0041".encode() + b"\n" * 40)
    message = raises("yolo_io.load('page.weights', 'cfg.cfg')", tmp_path, "FormatError")
    assert ('page.weights is not a Darknet .weights file: it is text, starting with '
            '"\\ufeff<p>\\xc0\\xaf\\xed\\xa0\\x80\\x80\U0001f600\\U000e0041\\n\\n') in message
    assert "an HTML/XML page" in message


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """A cfg and its weights in tmp_path: m.cfg, m.weights."""
    (tmp_path / "m.cfg").write_bytes(NET + CONV)
    return tmp_path / "m.cfg", write_weights(tmp_path / "m.weights", tmp_path / "m.cfg")


def test_swapped_arguments(pair: tuple[Path, Path]) -> None:
    cfg, weights = pair
    message = raises("yolo_io.load('m.cfg', 'm.weights')", cfg.parent, "SwappedArgumentsError")
    assert "look swapped" in message and 'yolo_io.load("m.weights", "m.cfg")' in message
    # Path objects, absolute paths: the call shown has the real paths.
    message = raises(f"from pathlib import Path\nyolo_io.load(Path({str(cfg)!r}), {str(weights)!r})",
                     cfg.parent, "SwappedArgumentsError")
    assert f'yolo_io.load("{weights}", "{cfg}")' in message
    out = ok("try:\n    yolo_io.load('m.cfg', 'm.weights')\nexcept ValueError as e:\n"
             "    print(isinstance(e, yolo_io.YoloIOError), type(e.__cause__).__name__)", cfg.parent)
    assert out.split() == ["True", "CfgError"]


def test_weights_passed_as_the_cfg(pair: tuple[Path, Path]) -> None:
    cfg, _ = pair
    for code in ("yolo_io.parse_cfg('m.weights')", "yolo_io.load('m.weights', 'm.weights')"):
        message = raises(code, cfg.parent, "CfgError")
        assert message.startswith("m.weights is not a cfg: it looks like a Darknet .weights file")
        assert message.isprintable() and message.isascii()


def test_cfg_passed_as_the_weights_after_blank_lines(pair: tuple[Path, Path]) -> None:
    cfg, _ = pair
    (cfg.parent / "blank.cfg").write_bytes(b"\xef\xbb\xbf\n  \n; comment\n" + NET + CONV)
    message = raises("yolo_io.load('blank.cfg', 'm.cfg')", cfg.parent, "FormatError")
    assert message.startswith('blank.cfg is not a Darknet .weights file: it is text, starting with '
                              '"\\ufeff\\n  \\n; comment\\n[net]')
    assert message.endswith("a .cfg file? (the weights come first: load(weights, cfg))")


def test_swapped_arguments_error_pickles() -> None:
    err = yolo_io.SwappedArgumentsError("m")
    assert isinstance(err, ValueError) and isinstance(err, yolo_io.YoloIOError)
    module = importlib.import_module(type(err).__module__)
    assert module.SwappedArgumentsError is yolo_io.SwappedArgumentsError
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err) and str(back) == "m"


def legacy_header() -> bytes:
    return struct.pack("<3fI", 0.001, 0.9, 0.0005, 0)


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (NET + CONV, "cfg"),
        (b"\xef\xbb\xbf\r\n# darknet\n \t\n;x\n  [net]\n", "cfg"),
        (b"# only comments\n" * 300 + NET, "other"),  # the '[' is past the first 4 KiB
        (b"width=8\n" + NET, "other"),
        (b"#\x00\n" + NET, "other"),  # binary
        (struct.pack("<3iQ", 0, 2, 5, 0) + b"\0" * 4000 * 4, "weights"),
        (struct.pack("<3iI", 0, 1, 0, 0) + b"\0" * 8, "weights"),
        (legacy_header() + b"\0" * 8, "weights"),
        (struct.pack("<3iQ", 0, 2, 5, 0) + b"\0" * 7, "other"),  # not whole floats
        (struct.pack("<3iQ", 0x474E5089, 0x0A1A0A0D, 0, 0), "other"),  # a big 'legacy' header
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "other"),
        (b"PK\x03\x04" + b"\0" * 100, "other"),
        (b"<html>\n", "other"),
        (b"", "other"),
    ],
    ids=["cfg", "cfg-bom-comments", "cfg-late", "option-first", "nul", "weights-0.2",
         "weights-0.1", "weights-legacy", "weights-odd", "weights-huge", "png", "zip", "html",
         "empty"],
)
def test_sniff_file(tmp_path: Path, content: bytes, kind: str) -> None:
    path = tmp_path / "f"
    path.write_bytes(content)
    assert _core.sniff_file(str(path)) == kind


def test_sniff_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        _core.sniff_file(str(tmp_path / "missing"))
    with pytest.raises(IsADirectoryError):
        _core.sniff_file(str(tmp_path))
