"""``yolo-io detect`` of yolov4-tiny over 50 images against OpenCV's darknet
importer doing the same work (issue 25).

* **Images per second, first use.** Every sample is a fresh process over the
  same 50 JPEG photographs (scikit-image's, at 512x512 to 1280x720), their
  files in the page cache. Ours: ``yolo-io detect CFG WEIGHTS DIR --json``
  (the default backend, onnxruntime; darknet's own resize, decoding,
  threshold 0.25 and NMS 0.45), timed by the command itself from the first
  image read to the last image's detections (the model build before it is
  not counted, and is printed). Baseline: ``cv2.dnn.readNetFromDarknet``, then
  for each image ``cv2.imread``, ``blobFromImage`` (OpenCV's resize, RGB,
  1/255), ``forward`` of the ``[yolo]`` outputs, the class scores above 0.25
  and ``cv2.dnn.NMSBoxesBatched`` at 0.45, timed the same way. Rounds
  interleaved; the paired ratio of the two loop times' medians. Target: at
  least OpenCV's rate (a time ratio at most 1.0x), recorded: at parity.

The weights are yolov4-tiny's shape with ``realistic=True`` values, the two
head convolutions' weights scaled by 10 and their objectness and class biases
lowered by 4 and 1, so that, as with trained weights, a few dozen candidates
per image pass the threshold (random weights otherwise put every
probability near 0.25, and the NMS of 70,000 boxes per image would be what
is measured).

    python -m pytest benchmarks/test_bench_detect.py --benchmark-only -s
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import FRESH_ENV, SHARED_CFG, medians_ms, record, record_target

import yolo_io
from yolo_io.testing import write_weights

cv2 = pytest.importorskip("cv2", reason="OpenCV is not installed (test extra)")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (test extra)")
Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed (test extra)")
skdata = pytest.importorskip("skimage.data", reason="scikit-image is not installed (test extra)")

ROUNDS = 7
IMAGES = 50
SIZES = ((640, 480), (1280, 720), (512, 512), (800, 600), (480, 640))

OURS = """
import contextlib, io, json, sys
from yolo_io._cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    code = main(["detect", sys.argv[3], sys.argv[2], sys.argv[1], "--json", "--no-progress"])
assert code == 0, code
doc = json.loads(out.getvalue())
found = sum(len(i["detections"]) for i in doc["images"])
print(doc["model_seconds"], found, doc["seconds"])
"""
OPENCV = """
import os, sys, time
import cv2
import numpy as np
folder, weights, cfg = sys.argv[1:4]
files = sorted(os.path.join(folder, n) for n in os.listdir(folder))
net = cv2.dnn.readNetFromDarknet(cfg, weights)
outputs = net.getUnconnectedOutLayersNames()
found = 0
t = time.perf_counter()
for name in files:
    image = cv2.imread(name)
    h, w = image.shape[:2]
    net.setInput(cv2.dnn.blobFromImage(image, 1 / 255, (416, 416), swapRB=True, crop=False))
    rows = np.concatenate(net.forward(outputs))
    box, cls = np.nonzero(rows[:, 5:] > 0.25)
    if box.size:
        xywh = rows[box, :4] * np.array([w, h, w, h], np.float32)
        xywh[:, :2] -= xywh[:, 2:] / 2
        found += len(cv2.dnn.NMSBoxesBatched(xywh.tolist(), rows[box, 5 + cls].tolist(),
                                             cls.tolist(), 0.25, 0.45))
print(found, time.perf_counter() - t)
"""


def _photographs(folder: Path) -> Path:
    sources = [np.asarray(f()) for f in (skdata.astronaut, skdata.chelsea, skdata.coffee,
                                         skdata.rocket)]
    for i in range(IMAGES):
        w, h = SIZES[i % len(SIZES)]
        image = Image.fromarray(sources[i % len(sources)]).convert("RGB").resize((w, h))
        image.save(folder / f"{i:02d}.jpg", quality=90)
    return folder


def _sparse_weights(path: Path, cfg: Path) -> Path:
    """realistic=True weights whose heads find a few dozen boxes per image."""
    write_weights(path, cfg, realistic=True, seed=0)
    net = yolo_io.load(path, cfg)
    convs = [(net[h.index - 1].offset, h.attrs.classes, len(h.attrs.anchors),
              net[h.index - 1].params["weights"].size) for h in net if h.kind.head]
    net.close()
    data = np.memmap(path, dtype=np.uint8, mode="r+")
    for offset, classes, anchors, count in convs:
        filters = anchors * (5 + classes)
        biases = data[offset:offset + 4 * filters].view(np.float32)
        data[offset + 4 * filters:offset + 4 * (filters + count)].view(np.float32)[:] *= 10
        for a in range(anchors):
            biases[a * (5 + classes) + 4] -= 4
            biases[a * (5 + classes) + 5:(a + 1) * (5 + classes)] -= 1
    data.flush()
    del data
    return path


@pytest.mark.benchmark(group="detect-yolov4-tiny")
def test_detect_rate_against_opencv(benchmark: Any, tmp_path: Path) -> None:
    cfg = SHARED_CFG / "yolov4-tiny.cfg"
    if not cfg.is_file():
        pytest.skip(f"{cfg} is not there (the real-cfg corpus lives beside the checkout in CI)")
    images = tmp_path / "images"
    images.mkdir()
    _photographs(images)
    weights = _sparse_weights(tmp_path / "yolov4-tiny.weights", cfg)
    rounds = 1 if benchmark.disabled else ROUNDS
    samples: dict[str, list[list[float]]] = {"ours": [], "opencv": []}

    def run(code: str) -> list[float]:
        """Every number a fresh process printed (the detections counted too)."""
        proc = subprocess.run([sys.executable, "-c", code, str(images), str(weights), str(cfg)],
                              capture_output=True, text=True, env=FRESH_ENV, check=True,
                              timeout=600)
        return [float(x) for x in proc.stdout.split()]

    def interleaved_rounds() -> None:
        for _ in range(rounds):
            samples["ours"].append(run(OURS))
            samples["opencv"].append(run(OPENCV))

    benchmark.pedantic(interleaved_rounds, rounds=1, iterations=1)
    ours_found = {int(s[1]) for s in samples["ours"]}
    opencv_found = {int(s[0]) for s in samples["opencv"]}
    assert len(ours_found) == 1 and len(opencv_found) == 1
    found, theirs = ours_found.pop(), opencv_found.pop()
    print(f"\ndetections over {IMAGES} images: {found} ours, {theirs} OpenCV's")
    # the same work: about as many detections (OpenCV resizes with its own bilinear
    # filter and adds another batch-norm epsilon, which moves boxes near the threshold)
    assert found >= 100 and abs(found - theirs) <= 0.1 * found
    if benchmark.disabled:
        return
    times = {"yolo-io detect": [s[2] for s in samples["ours"]],
             "OpenCV": [s[1] for s in samples["opencv"]]}
    ratio = record(benchmark, "yolov4-tiny detections of 50 JPEG photographs",
                   "first use: fresh process, model built (untimed), images in the page cache",
                   times, "yolo-io detect", "OpenCV")
    model = statistics.median(s[0] for s in samples["ours"])
    rates = {k: IMAGES / statistics.median(v) for k, v in times.items()}
    print(f"\nyolov4-tiny over {IMAGES} images: {'; '.join(medians_ms(times))}; "
          f"{rates['yolo-io detect']:.1f} against {rates['OpenCV']:.1f} images/s; "
          f"time ratio {ratio:.2f}x; our model built in {model * 1e3:.0f} ms")
    # Recorded, not asserted: at parity (0.98-1.00x in the runs of 2026-12-06;
    # 0.90x once), onnxruntime's forward being most of each image's time.
    record_target(benchmark, "yolo-io detect of yolov4-tiny / OpenCV readNetFromDarknet "
                  "+ forward + NMS, time per image (first use)", ratio, 1.0,
                  why="at parity: the forward, ~40 ms of an image's ~40, is the same work")
