"""``yolo-io detect CFG WEIGHTS IMAGE_OR_DIR...``: darknet's ``detector
test`` without darknet: detections printed as darknet prints them, annotated
images written to ``--out``."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from .._base.paths import shown
from .common import (
    EXIT_DEPENDENCY,
    EXIT_IO,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    Failure,
    check_paths,
    load_or_fail,
    require,
    stage,
)

#: The suffixes of the image files a folder is searched for (any case).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
#: A file with this suffix is a darknet list (train.txt): one image per line.
LIST_SUFFIXES = (".txt", ".list")


def _expand(sources: list[str]) -> list[str]:
    """The images of ``sources``: files as given, a folder's image files
    (sorted, not recursive), a list file's lines (``\\r`` and blank lines
    dropped; relative paths from the current folder, as darknet reads them)."""
    images: list[str] = []
    for source in sources:
        if os.path.isdir(source):
            names = sorted(n for n in os.listdir(source)
                           if n.lower().endswith(IMAGE_SUFFIXES)
                           and os.path.isfile(os.path.join(source, n)))
            if not names:
                raise Failure(f"{source}: a folder without images ({', '.join(IMAGE_SUFFIXES)})",
                              EXIT_IO)
            images += [os.path.join(source, n) for n in names]
        elif source.lower().endswith(LIST_SUFFIXES):
            with open(source, "rb") as f:
                lines = f.read().decode("utf-8", "surrogateescape").split("\n")
            images += [line.rstrip("\r").strip() for line in lines if line.strip()]
        else:
            images.append(source)
    return images


def _output_names(images: list[str], out: str | None, inputs: list[tuple[str, str]]
                  ) -> list[str | None]:
    """Where each annotated image goes: ``out/<its name>`` (``<its name>.png``
    when Pillow cannot write the input's format). Refused before anything
    runs: two inputs of one name, an output that is any input (an image, the
    cfg, ...: the same file by inode, so also through a symbolic link in
    ``out``), an output name taken by a folder, a device or a FIFO."""
    if out is None:
        return [None] * len(images)
    from .._base.errors import OutputIsInputError
    from .._inference.draw import output_name
    from .._writing.atomic import refuse_inputs, resolve_target

    read: dict[tuple[int, int], str] = {}
    for image in images:
        try:
            st = os.stat(image)
        except (OSError, ValueError):
            continue
        read.setdefault((st.st_dev, st.st_ino), image)
    names: dict[str, str] = {}
    targets: list[str | None] = []
    for image in images:
        target = os.path.join(out, output_name(os.path.basename(image)))
        if target in names:
            raise Failure(f"{shown(names[target])} and {shown(image)} would both be written to "
                          f"{shown(target)}: give them different names, or run twice", EXIT_USAGE)
        names[target] = image
        try:
            out_st: os.stat_result | None = os.stat(target)
        except (OSError, ValueError):
            out_st = None
        try:
            if out_st is not None and (out_st.st_dev, out_st.st_ino) in read:
                refuse_inputs(target, [("the input image", read[out_st.st_dev, out_st.st_ino])])
            refuse_inputs(target, inputs)
        except OutputIsInputError as err:
            raise Failure(str(err), EXIT_USAGE) from err
        try:
            resolve_target(target)
        except OSError as err:
            raise Failure(f"{shown(target)}: {err.strerror or err}: an annotated image cannot "
                          "be written there", EXIT_IO) from err
        targets.append(target)
    return targets


def run(args: argparse.Namespace) -> int:
    from .._diagnosis.text_files import read_data_file
    from .._lowering.image import decoder_available

    check_paths("detect", args.cfg, args.weights)
    if args.out is not None:
        require("PIL", "detect")
    if not decoder_available():
        raise Failure("reading images needs Pillow or OpenCV: pip install 'yolo_io[detect]'",
                      EXIT_DEPENDENCY)
    names: str | None = args.names
    if args.data is not None:
        options = read_data_file(args.data)[0]
        names = options.get("names", (None, 0))[0]
        if not names:
            raise Failure(f"{shown(args.data)} has no names= line", EXIT_USAGE)
    images = _expand(args.images)
    if not images:
        raise Failure("no images to detect in", EXIT_USAGE)
    inputs = [("the input CFG", args.cfg), ("the input WEIGHTS", args.weights),
              ("the names file", names), ("the .data file", args.data)]
    targets = _output_names(images, args.out, [(what, p) for what, p in inputs if p])
    try:
        net = load_or_fail(args.weights, args.cfg, False)
    except Failure as err:  # detect has no --partial: say what it needs instead
        raise Failure(str(err).replace("; pass partial=True to load it.",
                                       ": detection needs every layer's weights."),
                      err.code) from err
    from .._base.errors import YoloIOError
    from .._inference.detect import Detector

    stage(f"building the {args.backend or 'default'} model")
    started = time.perf_counter()
    try:
        detector = Detector(net, backend=args.backend, thresh=args.thresh, nms=args.nms,
                            names=names, letter_box=True if args.letter_box else None)
    except ImportError as err:
        raise Failure(f"{err}", EXIT_DEPENDENCY) from err
    except YoloIOError as err:  # a model the backend cannot run, or no detector
        raise Failure(str(err)) from err
    except ValueError as err:
        raise Failure(str(err), EXIT_USAGE) from err
    built = time.perf_counter() - started
    if args.out is not None:
        os.makedirs(args.out, exist_ok=True)
    results, failures = _detect_all(detector, images, targets, args)
    seconds = sum(r["seconds"] for r in results)
    rate = len(results) / seconds if seconds > 0 else 0.0
    if args.json:
        json.dump(_json_safe({"cfg": args.cfg, "weights": args.weights, "backend": detector.backend_name,
                   "thresh": detector.thresh, "nms": detector.nms,
                   "letter_box": detector.letter_box, "model_seconds": built,
                   "images": results, "errors": failures, "seconds": seconds,
                   "images_per_second": rate}), sys.stdout, indent=1, allow_nan=False)
        sys.stdout.write("\n")
    sys.stderr.write(f"{PROG}: {len(results)} image{'s' * (len(results) != 1)} in "
                     f"{seconds:.2f} s: {rate:.1f} images/s ({detector.backend_name}; model "
                     f"built in {built:.2f} s)\n")
    return EXIT_IO if failures else EXIT_OK


def _detect_all(detector: Any, images: list[str], targets: list[str | None],
                args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    from .._base.progress import progress_bar
    from .._lowering.image import network_input, read_pixels

    bar = progress_bar(len(images), False if args.no_progress else None, "detect", unit="img")
    results: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    try:
        for image, target in zip(images, targets, strict=True):
            started = time.perf_counter()
            try:
                pixels, _ = read_pixels(image, detector.channels)
                x = network_input(pixels, detector.width, detector.height,
                                  detector.letter_box)
            except (OSError, ValueError, TypeError) as err:
                text = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
                failures.append({"path": image, "error": text})
                sys.stderr.write(f"{PROG}: warning: {shown(image)}: {shown(text)} (skipped)\n")
                if bar is not None:
                    bar.update(1)
                continue
            found = detector.run_inputs(x[None], [(pixels.shape[1], pixels.shape[0])])[0]
            seconds = time.perf_counter() - started
            written = None
            if target is not None:
                try:
                    written = _write(pixels, found, target, detector)
                except OSError as err:
                    text = err.strerror or str(err)
                    failures.append({"path": image, "error": f"{shown(target)}: {text}"})
                    sys.stderr.write(f"{PROG}: warning: {shown(target)}: {shown(text)} "
                                     "(not written)\n")
            results.append({"path": image, "width": int(pixels.shape[1]),
                            "height": int(pixels.shape[0]), "seconds": seconds,
                            "detections": [d.to_dict() for d in found], "output": written})
            if not args.json:
                _print(image, found, seconds, written, bar)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return results, failures


def _json_safe(doc: Any) -> Any:
    """``doc`` with every infinite or NaN float (a box from an overflowing
    head) as null: JSON has no such numbers."""
    if isinstance(doc, float):
        return doc if math.isfinite(doc) else None
    if isinstance(doc, list):
        return [_json_safe(v) for v in doc]
    if isinstance(doc, dict):
        return {k: _json_safe(v) for k, v in doc.items()}
    return doc


def _print(image: str, found: list[Any], seconds: float, written: str | None,
           bar: Any) -> None:
    lines = [f"{shown(image)}: Predicted in {seconds * 1000:.1f} milli-seconds."]
    # darknet prints the boxes from left to right (compare_by_lefts).
    lines += [str(d) for d in sorted(found, key=lambda d: d.left)]
    if written is not None:
        lines.append(f"written: {shown(written)}")
    text = "\n".join(lines) + "\n"
    if bar is not None:
        from tqdm import tqdm

        tqdm.write(text.rstrip("\n"), file=sys.stdout)
    else:
        sys.stdout.write(text)


def _write(pixels: Any, found: list[Any], target: str, detector: Any) -> str:
    from .._inference.draw import annotate, encode
    from .._writing.atomic import atomic_file, resolve_target

    image = annotate(pixels, found, detector.heads.classes)
    data = encode(image, Path(target).suffix)
    with atomic_file(resolve_target(target)) as writer:
        writer.write(data)
    return target
