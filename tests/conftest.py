"""Shared fixtures: the real-cfg corpus next to the checkout, and small cfgs."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import warnings
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TypeVar

import pytest

import yolo_io
from yolo_io.testing import write_weights

# ../shared/cfg next to the checkout (the project's CI layout). A user's clone
# does not have it: tests that need it skip with a message. In CI
# (YOLO_IO_CI=1, set by .ci/run) a missing corpus stops the run instead.
SHARED_CFG = Path(__file__).resolve().parents[2] / "shared" / "cfg"
CORPUS_REASON = f"the real-cfg corpus is not at {SHARED_CFG} (it lives beside the checkout in CI)"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("YOLO_IO_CI") and not any(SHARED_CFG.glob("*.cfg")):
        raise pytest.UsageError(f"{CORPUS_REASON}; YOLO_IO_CI is set, so this is a failure")


# In CI (YOLO_IO_CI=1) a skip is a failure: every oracle (OpenCV, darknet2any,
# onnxruntime), framework (torch, Keras), extra and the corpus is installed
# there, so a test that skips has lost what it checks. Only these facts of
# the machine may skip.
CI_SKIPS_ALLOWED = ("this CPU has no AVX2",)


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2] if isinstance(longrepr, tuple) else longrepr).removeprefix("Skipped: ")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                         pytest.TestReport]:
    return failed_in_ci((yield))


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[
        None, pytest.CollectReport, pytest.CollectReport]:
    """A module that skips as a whole (a module-level importorskip)."""
    return failed_in_ci((yield))


Report = TypeVar("Report", pytest.TestReport, pytest.CollectReport)


def failed_in_ci(report: Report) -> Report:
    if (report.skipped and os.environ.get("YOLO_IO_CI") and not hasattr(report, "wasxfail")
            and not skip_reason(report).startswith(CI_SKIPS_ALLOWED)):
        reason = skip_reason(report)
        report.outcome = "failed"
        report.longrepr = f"skipped under YOLO_IO_CI, where nothing may be missing: {reason}"
    return report


def corpus_model(tmp_path_factory: pytest.TempPathFactory, name: str,
                 seed: int = 0) -> tuple[Path, Path]:
    """(weights, cfg): a corpus cfg with weights written for it, or a skip."""
    cfg = SHARED_CFG / f"{name}.cfg"
    if not cfg.is_file():
        pytest.skip(CORPUS_REASON)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.CfgWarning)
        weights = write_weights(tmp_path_factory.mktemp(name) / f"{name}.weights", cfg, seed=seed)
    return weights, cfg


def corpus_cfgs() -> list[Path]:
    return sorted(SHARED_CFG.glob("*.cfg")) if SHARED_CFG.is_dir() else []


def manifest_sizes() -> dict[str, int]:
    """cfg name -> computed .weights bytes (20-byte header) from MANIFEST.md."""
    out: dict[str, int] = {}
    for line in (SHARED_CFG / "MANIFEST.md").read_text().splitlines():
        cols = [c.strip() for c in line.split("|")]
        if len(cols) > 8 and cols[1].endswith(".cfg"):
            m = re.match(r"\**(\d+)", cols[7])
            if m:
                out[cols[1]] = int(m.group(1))
    return out


@pytest.fixture
def corpus() -> Path:
    if not SHARED_CFG.is_dir():
        pytest.skip(CORPUS_REASON)
    return SHARED_CFG


def corpus_param(exclude: tuple[str, ...] = (),
                 where: Callable[[yolo_io.Config], bool] | None = None) -> list[object]:
    """Parametrize over corpus cfgs (those whose Config ``where`` accepts);
    a single skipping param when the corpus is absent."""
    cfgs = [c for c in corpus_cfgs() if c.name not in exclude]
    if where is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", yolo_io.CfgWarning)
            cfgs = [c for c in cfgs if where(yolo_io.parse_cfg(c))]
    if not cfgs:
        return [pytest.param(None, marks=pytest.mark.skip(reason=CORPUS_REASON), id="no-corpus")]
    return [pytest.param(c, id=c.name) for c in cfgs]


# A small detector using most byte-storing features: conv with and without BN,
# groups, a route with groups, a shortcut, maxpool size 2 stride 1, upsample,
# a yolo head. 8x8 input keeps files tiny.
TINY_CFG = """\
[net]
width=8
height=8
channels=3

[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
groups=2
activation=mish

[route]
layers=-1
groups=2
group_id=1

[convolutional]
filters=8
size=1
activation=linear

[shortcut]
from=-3
activation=linear

[maxpool]
size=2
stride=1

[upsample]
stride=2

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
def tiny_cfg(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.cfg"
    path.write_text(TINY_CFG)
    return path


@pytest.fixture
def tiny_weights(tmp_path: Path, tiny_cfg: Path) -> Path:
    return write_weights(tmp_path / "tiny.weights", tiny_cfg, seed=7)


def conv_cfg(c: int, filters: int, size: int, groups: int, bn: int, hw: int = 7) -> str:
    """A one-convolution cfg (linear activation, pad=1) on a hw x hw x c input."""
    return (f"[net]\nwidth={hw}\nheight={hw}\nchannels={c}\n[convolutional]\nfilters={filters}\n"
            f"size={size}\npad=1\ngroups={groups}\nbatch_normalize={bn}\nactivation=linear\n")


def yolo_io_on_a_terminal(*args: object) -> tuple[str, str]:
    """Runs ``python -m yolo_io ARGS`` with stderr on a pseudo-terminal (stdout
    a pipe); asserts exit 0 and returns (stdout, what the terminal showed)."""
    master, slave = pty.openpty()
    env = {**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "yolo_io", *map(str, args)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                            env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.stdout is not None
    with proc.stdout:
        stdout = proc.stdout.read().decode()
    assert proc.wait(timeout=60) == 0
    return stdout, b"".join(chunks).decode(errors="replace")


def resized(text: str, size: int) -> str:
    """The cfg with [net] width and height set to ``size``."""
    net = re.search(r"^\[net(work)?\][^\[]*", text, re.MULTILINE)
    assert net is not None
    body = re.sub(r"^(width|height)=.*$", lambda m: f"{m.group(1)}={size}", net.group(0),
                  flags=re.MULTILINE)
    return text[:net.start()] + body + text[net.end():]
