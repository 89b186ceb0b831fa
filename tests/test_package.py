"""Package-level facts: version, public names, yolo_io.testing."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import yolo_io
from yolo_io.testing import write_weights

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(yolo_io.__file__).parent
PYPROJECT = ROOT / "pyproject.toml"
# Extras for developing yolo_io, not for using it.
DEV_EXTRAS = {"test", "oracle"}
# Extras for the user's own code, not imported by yolo_io: `safetensors` installs
# the package that reads save_safetensors() files (yolo_io writes and reads them
# without it).
READER_EXTRAS = {"safetensors"}
# Requirements of the dev extras that no test imports: command-line tools,
# pytest plugins and the build backend.
TOOLS = {"pytest", "pytest-benchmark", "ruff", "mypy", "scikit-build-core"}
IMPORT_NAMES = {"opencv-python-headless": "cv2", "ml-dtypes": "ml_dtypes", "scikit-image": "skimage",
                "import-linter": "importlinter", "tensorflow-cpu": "tensorflow",
                "pillow": "PIL"}


def requirement_name(req: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", req)
    assert match, req
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def third_party_imports(*folders: Path) -> set[str]:
    """Top-level modules imported by the files below `folders` (including
    pytest.importorskip("x")), without the standard library and our own."""
    found: set[str] = set()
    for folder in folders:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
                elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                      and node.func.attr == "importorskip" and node.args
                      and isinstance(node.args[0], ast.Constant)):
                    found.add(str(node.args[0].value).split(".")[0])
    local = {p.stem for folder in folders for p in folder.glob("*.py")}
    return found - set(sys.stdlib_module_names) - local - {"yolo_io", "__future__"}


def test_version_is_single_sourced() -> None:
    assert yolo_io.__version__ == importlib.metadata.version("yolo_io")


def test_public_names() -> None:
    for name in yolo_io.__all__:
        assert hasattr(yolo_io, name), name


def test_write_weights_is_deterministic_and_valid(tmp_path: Path, tiny_cfg: Path) -> None:
    a = write_weights(tmp_path / "a.weights", tiny_cfg, seed=1).read_bytes()
    b = write_weights(tmp_path / "b.weights", tiny_cfg, seed=1).read_bytes()
    c = write_weights(tmp_path / "c.weights", tiny_cfg, seed=2).read_bytes()
    assert a == b != c
    net = yolo_io.load(tmp_path / "a.weights", tiny_cfg)
    for layer in net:
        for name, arr in layer.params.items():
            assert np.isfinite(arr).all()
            if name.endswith("rolling_variance"):
                assert (arr > 0).all()


def test_write_weights_partial_and_header(tmp_path: Path, tiny_cfg: Path) -> None:
    cfg = yolo_io.parse_cfg(tiny_cfg)
    p = write_weights(tmp_path / "p.weights", cfg, layers=2, version=(0, 1, 0), seen=9)
    assert p.stat().st_size == cfg.expected_size((0, 1), layers=2)
    net = yolo_io.load(p, cfg, partial=True)
    assert net.header.seen == 9 and net.covered_layers == 3  # layer 2 (route) stores nothing


def test_extras_declare_exactly_what_the_code_imports() -> None:
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    if not PYPROJECT.is_file():
        pytest.skip(f"no pyproject.toml at {PYPROJECT} (not a checkout)")
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]

    def modules(reqs: list[str]) -> set[str]:
        names = {requirement_name(r) for r in reqs}
        return {IMPORT_NAMES.get(n, n.replace("-", "_")) for n in names - TOOLS}

    # The package: its dependencies and user extras are what src/ imports.
    user = [r for name, reqs in extras.items()
            if name not in DEV_EXTRAS | READER_EXTRAS for r in reqs]
    assert modules(project["dependencies"] + user) == third_party_imports(ROOT / "src")
    assert "ml_dtypes" in modules(extras["bfloat16"])
    # Every dev requirement is a tool or something the tests import.
    dev = [r for name in DEV_EXTRAS for r in extras[name]]
    assert modules(dev) <= third_party_imports(ROOT / "tests", ROOT / "benchmarks")
    assert {"ruff", "mypy"} <= {requirement_name(r) for r in extras["test"]}


def test_no_cfg_option_text_is_parsed_in_python() -> None:
    """Option values come typed from the core (layer.attrs, Config.net), which
    reads them as darknet does: int()/float()/atoi() of an option's raw text
    broke on inline comments (``letter_box=1 # keep aspect``; issue 22, item 11)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("int", "float", "atoi")):
                continue
            for inner in (n for arg in node.args for n in ast.walk(arg)):
                name = inner.attr if isinstance(inner, ast.Attribute) else getattr(inner, "id", "")
                if name in ("options", "net_options", "opts"):
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "\n".join(found)


def test_darknets_bn_epsilon_is_written_once_in_the_core() -> None:
    """darknet's batch-norm epsilon is kBnEpsilon in csrc/yolo_io/fuse.hpp,
    read in Python as _core.BN_EPSILON: no Python code spells 1e-5 itself
    (it was written in 9 places; issue 23). Docstrings and comments may."""
    from yolo_io import _core

    assert _core.BN_EPSILON == 1e-5
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value == 1e-5 and type(node.value) is float:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not found, found
    sources = [p for p in sorted((ROOT / "csrc").rglob("*.[ch]pp"))
               if re.search(r"(?<![\w.])(1e-0?5|0?\.00001)(?![\d])",
                            re.sub(r"//[^\n]*", "", p.read_text()))]
    assert [p.relative_to(ROOT).as_posix() for p in sources] == ["csrc/yolo_io/fuse.hpp"]


def test_every_file_is_written_by_the_cores_atomic_writer() -> None:
    """One atomic writer (issue 23, item 3): every file the library writes
    (weights, safetensors, npz, save_fused's pair, ONNX and its external data,
    the doctor's plot, the demo's files) goes through the core's WeightsWriter
    (fsync, rename keeping the replaced file's mode, folder fsync), via
    yolo_io._writing.atomic.atomic_file or WriterStream; no module opens a file for
    writing, renames or fsyncs by itself. The exceptions: verify()'s
    scratch cfgs for OpenCV, in a temporary folder of its own, and
    replace_folder, which puts a folder another library wrote (TensorFlow's
    SavedModel) in place: fsyncs, then renames."""
    scratch = {("_export/verify.py", "write_bytes"), ("_writing/atomic.py", "fsync"),
               ("_writing/atomic.py", "rename")}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            call = ast.unparse(node)
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(
                node.func, "id", "")
            receiver = ast.unparse(node.func.value) if isinstance(node.func, ast.Attribute) else ""
            by_itself = (
                (receiver == "os" and name in ("replace", "rename", "fsync"))
                or (receiver == "os" and name == "open" and "devnull" not in call
                    and any(flag in call for flag in ("O_CREAT", "O_WRONLY", "O_RDWR")))
                or (receiver in ("np", "numpy") and name.startswith("save")
                    and "WriterStream" not in call)
                or (receiver == "shutil" and name in ("move", "copy", "copyfile", "copy2"))
                or name in ("write_bytes", "write_text", "tofile")
                or (name == "savefig" and "WriterStream" not in call)
                or (name == "open" and any(isinstance(a, ast.Constant) and isinstance(a.value, str)
                                           and set(a.value) & set("wax+") for a in node.args[1:2])))
            if by_itself and (path.relative_to(PACKAGE).as_posix(), name) not in scratch:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {call}")
    assert not found, "\n".join(found)


def _modules_after(code: str) -> set[str]:
    import subprocess

    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


# Imported only by the calls that use them (issue 26: `import yolo_io` within
# 40 ms of `import numpy`): the attrs records, the diagnosis, detection, the
# lowering, the exports and writers, the CLI's other commands, and the
# installed metadata (the version is a constant).
_LAZY_MODULES = {"yolo_io._model.attrs", "yolo_io._diagnosis.data",
                 "yolo_io._diagnosis.diagnose", "yolo_io._diagnosis.doctor",
                 "yolo_io._inference.detect", "yolo_io._lowering", "yolo_io._export.verify",
                 "yolo_io._writing.weights", "yolo_io._writing.safetensors",
                 "importlib.metadata"}
# Standard modules loading does not need, each a millisecond or more: pathlib
# (the core's default path argument once made it a pathlib.Path at import),
# json, numpy.typing (annotations only).
_LAZY_STDLIB = {"pathlib", "json", "numpy.typing"}


def test_import_yolo_io_imports_only_what_loading_needs() -> None:
    loaded = _modules_after("import yolo_io")
    assert not loaded & (_LAZY_MODULES | _LAZY_STDLIB)
    # and every public name still resolves, importing its module on first use
    loaded = _modules_after("import yolo_io\nfor n in yolo_io.__all__: getattr(yolo_io, n)\n"
                            "yolo_io.attrs.ConvolutionalAttrs")
    assert {"yolo_io._model.attrs", "yolo_io._inference.detect"} <= loaded
    assert "attrs" in dir(yolo_io) and "detect" in dir(yolo_io)
    with pytest.raises(AttributeError, match="no attribute 'detekt'"):
        yolo_io.detekt  # type: ignore[attr-defined]  # noqa: B018


def test_a_cli_command_imports_only_its_own_modules(tmp_path: Path, tiny_cfg: Path) -> None:
    weights = write_weights(tmp_path / "t.weights", tiny_cfg)
    loaded = _modules_after(f"import yolo_io._cli as c\nc.main(['check', {str(tiny_cfg)!r}, "
                            f"{str(weights)!r}])")
    assert "yolo_io._cli.check" in loaded and "yolo_io._diagnosis.diagnose" in loaded
    others = {f"yolo_io._cli.{m}" for m in ("detect", "export", "verify", "demo", "inspect",
                                            "convert", "check_data", "doctor", "partial")}
    assert not loaded & (others | {"yolo_io._export.verify", "yolo_io._lowering",
                                   "yolo_io._inference.detect", "importlib.metadata"})
    # nor shutil (with zlib, bz2 and lzma: argparse's formatter imports it for
    # the terminal's width) nor json without --json
    assert not loaded & (_LAZY_STDLIB | {"shutil", "bz2", "lzma"})
    loaded = _modules_after(f"import yolo_io._cli as c\nc.main(['check', {str(tiny_cfg)!r}, "
                            f"{str(weights)!r}, '--json'])")
    assert "json" in loaded


def test_looking_up_a_missing_name_imports_nothing() -> None:
    loaded = _modules_after("import yolo_io\nhasattr(yolo_io, '__wrapped__')\n"
                            "hasattr(yolo_io, 'nothing')")
    assert "yolo_io._model.attrs" not in loaded
