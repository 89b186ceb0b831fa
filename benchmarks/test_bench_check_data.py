"""``yolo-io check-data`` of a dataset of 100,000 images with their label files.

Target (issue 25): check_data() of 100,000 list entries, each image present
and each label file holding a few boxes, finishes in under 10 s on 2 cores.
Regime: a fresh process per sample (interpreter start and import included,
as the command runs), the dataset in the scratch folder (tmpfs when it has
room) and so in the page cache, as right after it was written or checked
once; no image is decoded (images=False, the default). The figure is the
median over rounds; the target is recorded as the ratio to the 10 s budget.

    python -m pytest benchmarks/test_bench_check_data.py --benchmark-only -s
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FRESH_ENV, record_target, scratch_folder

IMAGES = 100_000
BUDGET_S = 10.0
ROUNDS = 3

CHECK = """
import sys, time
start = time.perf_counter()
import yolo_io
report = yolo_io.check_data(sys.argv[1], root=sys.argv[2], progress=False)
elapsed = time.perf_counter() - start
assert report.ok and report.train_images == int(sys.argv[3]), str(report)[:2000]
print(report.boxes, elapsed)
"""


def make_dataset(folder: Path, n: int) -> Path:
    """n images (a JPEG's first bytes each) in folders of 1000, each with a
    label file of 1 to 4 boxes, 90% in train.txt and 10% in valid.txt."""
    lines = []
    for i in range(n):
        sub = folder / "data" / f"{i // 1000:03d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True)
        name = f"data/{i // 1000:03d}/img{i:06d}.jpg"
        (folder / name).write_bytes(b"\xff\xd8\xff\xe0")
        (folder / name[:-4]).with_suffix(".txt").write_text(
            "".join(f"{(i + k) % 80} 0.{(k + 3) % 9 + 1} 0.5 0.1{k} 0.2\n" for k in range(i % 4 + 1)))
        lines.append(name)
    cut = n * 9 // 10
    (folder / "train.txt").write_text("\n".join(lines[:cut]) + "\n")
    (folder / "valid.txt").write_text("\n".join(lines[cut:]) + "\n")
    (folder / "obj.names").write_text("".join(f"class{c}\n" for c in range(80)))
    (folder / "backup").mkdir()
    data = folder / "obj.data"
    data.write_text("classes=80\ntrain=train.txt\nvalid=valid.txt\nnames=obj.names\n"
                    "backup=backup/\n")
    return data


@pytest.fixture(scope="module")
def big_dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = scratch_folder(tmp_path_factory.mktemp("check-data"))
    folder = base / f"yolo_io-bench-check-data-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    try:
        yield make_dataset(folder, IMAGES)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _one(data: Path) -> float:
    proc = subprocess.run([sys.executable, "-c", CHECK, str(data), str(data.parent),
                           str(IMAGES * 9 // 10)], capture_output=True, text=True,
                          env=FRESH_ENV, check=True, timeout=600)
    return float(proc.stdout.split()[-1])


@pytest.mark.benchmark(group="check-data")
def test_check_data_of_100k_images_under_10s(benchmark: pytest.FixtureDef,
                                             big_dataset: Path) -> None:
    rounds = 1 if benchmark.disabled else ROUNDS
    times = benchmark.pedantic(lambda: [_one(big_dataset) for _ in range(rounds)], rounds=1,
                               iterations=1)
    if benchmark.disabled:
        return
    median = statistics.median(times)
    benchmark.extra_info["seconds"] = median
    print(f"\ncheck_data of {IMAGES} images with labels ({os.cpu_count()} cores): "
          f"{', '.join(f'{t:.2f}' for t in times)} s, median {median:.2f} s "
          f"(target < {BUDGET_S:.0f} s)")
    assert record_target(benchmark, f"check_data of {IMAGES} images with labels / {BUDGET_S:.0f} s",
                         median / BUDGET_S, 1.0)
