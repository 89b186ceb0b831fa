"""Seed corpora for the fuzz harnesses, written into fuzz/build/corpus/<harness>/.

- fuzz_cfg: every cfg of ../shared/cfg (the real-cfg corpus beside the
  checkout, when it is there), the project's own small test cfgs and the
  committed seeds of fuzz/seeds/fuzz_cfg (cfgs that once overflowed, each a
  case of tests/test_hostile.py).
- fuzz_weights: each small test cfg, a NUL, and a complete .weights file for
  it (``yolo_io.testing.write_weights``), in both header versions; each real
  cfg with the first 4 KiB of a file for it (a truncated download); each
  seed of fuzz/seeds/fuzz_cfg with a header (the planner runs first).
- fuzz_safetensors: raw and state-dict exports of the small test models
  (``yolo_io.save_safetensors``).

Nothing written here is committed: the real cfgs must not be copied into the repo.

    python fuzz/make_corpus.py
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

import yolo_io
from yolo_io.testing import header_bytes, write_weights

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED_CFG = ROOT.parent / "shared" / "cfg"
SEEDS = HERE / "seeds"
OUT = HERE / "build" / "corpus"


def put(harness: str, data: bytes) -> None:
    folder = OUT / harness
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def main() -> int:
    small = sorted((ROOT / "tests" / "data").glob("*/*.cfg"))
    real = sorted(SHARED_CFG.glob("*.cfg")) if SHARED_CFG.is_dir() else []
    if not real:
        print(f"make_corpus.py: {SHARED_CFG} is not there; seeding with the small cfgs only",
              file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for cfg in small:
            text = cfg.read_bytes()
            put("fuzz_cfg", text)
            for version in ((0, 2, 5), (0, 1, 0)):
                weights = write_weights(scratch / "w.weights", cfg, version=version, seed=1)
                put("fuzz_weights", text + b"\0" + weights.read_bytes())
            net = yolo_io.load(scratch / "w.weights", cfg)
            for naming in (None, "darknet2pytorch"):
                try:
                    out = yolo_io.save_safetensors(scratch / "x.safetensors", net, naming=naming)
                except yolo_io.YoloIOError:
                    continue  # a layer that naming cannot hold
                put("fuzz_safetensors", out.read_bytes())
        for cfg in sorted((SEEDS / "fuzz_cfg").glob("*.cfg")):
            text = cfg.read_bytes()
            put("fuzz_cfg", text)
            put("fuzz_weights", text + b"\0" + header_bytes())
        for cfg in real:
            text = cfg.read_bytes()
            put("fuzz_cfg", text)
            try:
                weights = write_weights(scratch / "w.weights", cfg, sparse=True)
            except yolo_io.CfgError:
                continue  # a cfg the corpus keeps because darknet refuses it
            with weights.open("rb") as f:
                put("fuzz_weights", text + b"\0" + f.read(4096))
            weights.unlink()
    for harness in ("fuzz_cfg", "fuzz_weights", "fuzz_safetensors"):
        print(f"{harness}: {len(list((OUT / harness).iterdir()))} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
