"""Building a wheel from a checkout writes nothing into the checkout."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def tracked_files() -> list[str]:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True,
                             check=True, timeout=60).stdout
    except subprocess.CalledProcessError:
        pytest.skip(f"{ROOT} is not a git checkout")
    return [f for f in out.decode().split("\0") if f and (ROOT / f).is_file()]


def file_set(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.slow
def test_pip_wheel_writes_nothing_into_the_checkout(tmp_path: Path) -> None:
    files = tracked_files()
    missing = [m for m in ("scikit_build_core", "pybind11") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"the build tools are not installed: {', '.join(missing)}")
    if shutil.which("cmake") is None or shutil.which(os.environ.get("CXX", "c++")) is None:
        pytest.skip("cmake or a C++ compiler is missing")
    copy, wheels = tmp_path / "checkout", tmp_path / "wheels"
    for f in files:
        (copy / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, copy / f)
    before = file_set(copy)
    env = {**os.environ, "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 1)}
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
         str(wheels), str(copy)],
        check=False, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert [w.suffix for w in wheels.iterdir()] == [".whl"]
    with zipfile.ZipFile(next(wheels.iterdir())) as wheel:  # the license travels with it
        names = wheel.namelist()
        licenses = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert licenses, names
        assert wheel.read(licenses[0]) == (ROOT / "LICENSE").read_bytes()
        metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
        assert b"License-Expression: MIT" in metadata
    assert file_set(copy) - before == set()
    assert before - file_set(copy) == set()


WARNINGS = ["-Wall", "-Wextra", "-Wconversion", "-pedantic", "-Werror"]


def compile_commands(build: Path, *options: str) -> list[dict[str, str]]:
    """Configures the project into `build` (nothing is compiled) and returns
    its compile_commands.json."""
    if importlib.util.find_spec("pybind11") is None or shutil.which("cmake") is None:
        pytest.skip("cmake or pybind11 is not installed")
    import pybind11

    result = subprocess.run(
        ["cmake", "-S", str(ROOT), "-B", str(build), *options,
         "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
         f"-DPython_EXECUTABLE={sys.executable}"],
        check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    commands: list[dict[str, str]] = json.loads((build / "compile_commands.json").read_text())
    return commands


def test_core_and_bindings_build_with_the_same_warnings(tmp_path: Path) -> None:
    """YOLO_IO_WERROR=ON: every translation unit of ours, bindings included,
    gets the warnings and -Werror; pybind11 and Python are system headers.
    (File by file, YOLO_IO_UNITY=OFF, so that each file is named.)"""
    commands = compile_commands(tmp_path, "-DYOLO_IO_WERROR=ON", "-DYOLO_IO_UNITY=OFF")
    sources = {Path(c["file"]).relative_to(ROOT).as_posix(): shlex.split(c["command"]) for c in commands}
    assert {s.split("/")[1] for s in sources} == {"yolo_io", "bindings"}
    for source, args in sources.items():
        assert [w for w in WARNINGS if w not in args] == [], source
        if source.startswith("csrc/bindings/"):
            includes = [a for a in args if a.startswith("-I")]
            assert includes == [f"-I{ROOT / 'csrc'}"], source  # the rest is -isystem


def test_the_unity_build_is_the_default(tmp_path: Path) -> None:
    """By default the core compiles as one translation unit and the bindings
    as another, which together include every source file of csrc/, each once,
    with the same warnings."""
    commands = compile_commands(tmp_path, "-DYOLO_IO_WERROR=ON")
    assert len(commands) == 2
    included: list[str] = []
    for c in commands:
        unity = Path(c["file"])
        assert unity.name.startswith("unity_") and unity.is_relative_to(tmp_path), unity
        args = shlex.split(c["command"])
        assert [w for w in WARNINGS if w not in args] == [], unity
        for line in unity.read_text().splitlines():
            if line.startswith("#include"):
                included.append(Path(line.split('"')[1]).relative_to(ROOT).as_posix())
    sources = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "csrc").rglob("*.cpp"))
    assert sorted(included) == sources


# The system headers and calls that only csrc/yolo_io/platform.cpp, the
# platform layer (platform.hpp), may use: a port to another system replaces
# that one file.
POSIX_HEADER = re.compile(r"#\s*include\s*<(sys/[^>]*|unistd\.h|fcntl\.h)>")
POSIX_CALL = re.compile(
    r"(?<![\w:])::(open|close|read|write|pread|preadv|pwrite|pwritev|lseek|fstat|stat|lstat|"
    r"fsync|fdatasync|fchmod|chmod|rename|unlink|truncate|ftruncate|fcntl|dup|dup2|mmap|munmap|"
    r"madvise|mprotect|msync|sysconf|getpagesize|posix_memalign|posix_madvise)\s*\(")
POSIX_NAME = re.compile(r"\b(MADV_\w+|MAP_\w+|PROT_\w+|O_[A-Z]+|S_IS\w+|_SC_\w+|struct (stat|iovec))\b")


def test_only_the_platform_layer_calls_the_system() -> None:
    """Building on macOS and Windows is a goal: the POSIX headers and calls
    are in csrc/yolo_io/platform.cpp alone, behind platform.hpp."""
    layer = ROOT / "csrc" / "yolo_io" / "platform.cpp"
    sources = sorted(p for p in (ROOT / "csrc").rglob("*") if p.suffix in {".cpp", ".hpp", ".h"})
    assert layer in sources
    found = []
    for source in sources:
        if source == layer:
            continue
        for number, line in enumerate(source.read_text().splitlines(), 1):
            code = line.split("//", 1)[0]
            if POSIX_HEADER.search(code) or POSIX_CALL.search(code) or POSIX_NAME.search(code):
                found.append(f"{source.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == [], "\n".join(found)
    # The test sees what it looks for.
    text = layer.read_text()
    assert POSIX_HEADER.search(text) and POSIX_CALL.search(text) and POSIX_NAME.search(text)


def test_ci_lints_and_type_checks_before_the_tests() -> None:
    """.ci/run runs the README's lint and type commands after installing (so
    that both tools are there) and before pytest, under `set -e`."""
    script = ROOT / ".ci" / "run"
    if not script.is_file():
        pytest.skip(f"no {script} (not a checkout)")
    lines = [line.strip() for line in script.read_text().splitlines()]
    assert "set -euo pipefail" in lines
    install = next(i for i, line in enumerate(lines) if line.startswith("python -m pip install -e"))
    assert "test" in lines[install].split("[")[1]
    for command in ("ruff check src tests benchmarks", "mypy"):
        assert f"`{command}`" in (ROOT / "README.md").read_text()
        assert install < lines.index(command) < lines.index("python -m pytest")
    # The README's command is the fast tier; the slow one runs right after it.
    assert lines.index("python -m pytest") + 1 == lines.index("python -m pytest -m slow")


def test_ci_builds_with_clang_and_werror_before_the_sanitizers() -> None:
    """.ci/run runs .ci/clang (a clang++ build, -Werror, the unity build)
    after the GCC -Werror suite and before .ci/sanitize."""
    run, clang = ROOT / ".ci" / "run", ROOT / ".ci" / "clang"
    if not run.is_file() or not clang.is_file():
        pytest.skip("no .ci scripts (not a checkout)")
    lines = [line.strip() for line in run.read_text().splitlines()]
    assert 'export SKBUILD_CMAKE_DEFINE="YOLO_IO_WERROR=ON"   # warnings are errors in CI' in lines
    assert lines.index("python -m pytest") < lines.index("bash .ci/clang") < lines.index("bash .ci/sanitize")
    script = clang.read_text()
    assert "set -euo pipefail" in script
    for needed in ('CXX="$CLANGXX"', "-Ccmake.define.YOLO_IO_WERROR=ON", "-Ccmake.define.YOLO_IO_UNITY=ON",
                   "-Cbuild-dir=build/clang", ".clang-venv"):
        assert needed in script, needed
    assert ".clang-venv/" in (ROOT / ".gitignore").read_text().splitlines()


def test_a_missing_corpus_fails_the_run_in_ci(tmp_path: Path) -> None:
    """The corpus tests skip on a user's clone, which has no ../shared/cfg;
    under YOLO_IO_CI (.ci/run) the run stops with an error instead."""
    tests = tmp_path / "checkout" / "tests"
    tests.mkdir(parents=True)
    shutil.copy2(ROOT / "tests" / "conftest.py", tests / "conftest.py")
    (tests / "test_one.py").write_text("def test_one():\n    pass\n")

    def run(**env: str) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if k != "YOLO_IO_CI"} | env
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(tests)], capture_output=True, text=True, check=False,
                              timeout=300, cwd=tmp_path, env=environ)

    user = run()
    assert user.returncode == 0, user.stdout + user.stderr
    ci = run(YOLO_IO_CI="1")
    assert ci.returncode == pytest.ExitCode.USAGE_ERROR, ci.stdout + ci.stderr
    assert "the real-cfg corpus is not at" in ci.stderr and "YOLO_IO_CI is set" in ci.stderr


def test_a_missing_oracle_or_framework_fails_the_run_in_ci(tmp_path: Path) -> None:
    """A test that skips for a missing module (OpenCV, torch, Keras, an
    oracle) skips on a user's machine; under YOLO_IO_CI it fails, while an
    xfail stays an xfail and a fact of the machine (no AVX2) may skip."""
    tests = tmp_path / "checkout" / "tests"
    tests.mkdir(parents=True)
    (tmp_path / "shared" / "cfg").mkdir(parents=True)  # a corpus beside the checkout
    (tmp_path / "shared" / "cfg" / "one.cfg").write_text("[net]\n")
    shutil.copy2(ROOT / "tests" / "conftest.py", tests / "conftest.py")
    (tests / "test_oracles.py").write_text(
        "import pytest\n"
        "def test_needs_a_framework():\n"
        "    pytest.importorskip('a_framework_that_is_not_installed')\n"
        "def test_needs_avx2():\n"
        "    pytest.skip('this CPU has no AVX2: only the portable kernels run here')\n"
        "@pytest.mark.xfail(reason='a known departure')\n"
        "def test_known():\n"
        "    assert False\n")
    (tests / "test_keras_only.py").write_text(  # a module that skips as a whole
        "import pytest\n"
        "pytest.importorskip('another_framework_that_is_not_installed')\n"
        "def test_with_it():\n"
        "    pass\n")

    def run(**env: str) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if k != "YOLO_IO_CI"} | env
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p",
                               "no:cacheprovider", str(tests)], capture_output=True, text=True,
                              check=False, timeout=300, cwd=ROOT, env=environ)

    user = run()
    assert user.returncode == 0 and "3 skipped, 1 xfailed" in user.stdout, user.stdout
    ci = run(YOLO_IO_CI="1")  # a module that cannot be collected stops the run
    assert ci.returncode == pytest.ExitCode.INTERRUPTED, ci.stdout + ci.stderr
    assert "ERROR" in ci.stdout and "another_framework_that_is_not_installed" in ci.stdout
    (tests / "test_keras_only.py").unlink()
    ci = run(YOLO_IO_CI="1")
    assert ci.returncode == pytest.ExitCode.TESTS_FAILED, ci.stdout + ci.stderr
    assert "1 failed, 1 skipped, 1 xfailed" in ci.stdout, ci.stdout
    assert "FAILED" in ci.stdout and "a_framework_that_is_not_installed" in ci.stdout
