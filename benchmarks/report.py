"""A Markdown table and a PNG chart from one benchmark run.

    python -m pytest benchmarks --benchmark-only --benchmark-json=bench.json
    python benchmarks/report.py bench.json --markdown bench.md --chart bench.png

Reads the rows the benchmarks record (``record()`` and ``record_memory()`` in
``benchmarks/conftest.py``: each operation with its regime, the medians of
ours and of the baseline measured in the same run and their paired ratio, or
an RSS growth and its bound) from pytest-benchmark's JSON, and writes:

- a Markdown table of times (operation, regime, ours, baseline, ratio), one
  of memory, and one of the performance targets (``record_target()``: each
  measured ratio against its bound, met or **not met** with the reason),
  headed by the machine the run was on (from the JSON) and the run's date;
- with ``--chart`` (needs matplotlib, the ``plot`` extra), a bar chart of the
  ratios, one bar per operation and regime, with the baseline at 1.0.

Exit codes: 0 written; 2 bad arguments or a file that is not such a JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any


def _measured(row: dict[str, Any]) -> str:
    """A target's measured figure: a ratio (``0.42x``) or a figure in its unit."""
    unit = row.get("unit", "x")
    return f"{row['measured']:.2f}x" if unit == "x" else f"{row['measured']:.1f} {unit}"


def rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every recorded row, in the order the benchmarks ran."""
    out: list[dict[str, Any]] = []
    for bench in data.get("benchmarks", []):
        out.extend(bench.get("extra_info", {}).get("report", []))
    return out


def machine(data: dict[str, Any]) -> str:
    """The machine of the run, in words, from pytest-benchmark's machine_info."""
    info = data.get("machine_info", {})
    cpu = info.get("cpu", {})
    parts = [cpu.get("brand_raw") or info.get("processor") or "unknown CPU"]
    if cpu.get("count"):
        parts.append(f"{cpu['count']} cores")
    parts.append(f"{info.get('system', '?')} {info.get('release', '')}".strip())
    parts.append(f"{info.get('python_implementation', 'Python')} {info.get('python_version', '?')}")
    return ", ".join(parts)


def duration(ms: float) -> str:
    """Milliseconds in words: "23.4 ms", or "125 us" below a millisecond."""
    return f"{ms:.1f} ms" if ms >= 1 else f"{ms * 1e3:.0f} us"


def by_regime(found: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by regime, regimes in the order they first ran."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in found:
        groups.setdefault(r["regime"], []).append(r)
    return groups


def markdown(data: dict[str, Any]) -> str:
    found = rows(data)
    times = [r for r in found if "ratio" in r]
    memory = [r for r in found if "rss_mb" in r]
    lines = [f"Machine: {machine(data)}; run of {data.get('datetime', '?')}.", ""]
    for regime, group in by_regime(times).items():
        lines += [f"*{regime}*", "", "| operation | time | baseline | ratio |",
                  "|---|---|---|---|"]
        lines += [f"| {r['operation']} | {duration(r['ours_ms'])} | "
                  f"{r['baseline']}: {duration(r['baseline_ms'])} | {r['ratio']:.2f}x |"
                  for r in group]
        lines.append("")
    if memory:
        lines += ["*fresh process, peak or current RSS*", "",
                  "| operation | RSS growth | bound |", "|---|---|---|"]
        lines += [f"| {r['operation']} | {r['rss_mb']:.1f} MB | "
                  + (f"< {r['bound_mb']:.0f} MB |" if r["bound_mb"] is not None else "reported |")
                  for r in memory]
        lines.append("")
    targets = [r for r in found if "target" in r]
    if targets:
        lines += ["*targets: each ratio above, against its bound*", "",
                  "| target | measured | bound | met |", "|---|---|---|---|"]
        lines += [f"| {r['target']} | {_measured(r)} | {r['bound']} | "
                  + ("yes |" if r["met"] else f"**not met**: {r['why']} |" if r["why"]
                     else "**not met** |")
                  for r in targets]
        lines.append("")
    return "\n".join(lines)


def kind(regime: str) -> str:
    """A regime's kind, the words before its colon: "first use", "steady state"..."""
    return regime.split(":")[0]


def detail(regime: str) -> str:
    """"; " and the regime's last parenthesis (a place, a baseline's state), if
    it has one."""
    found = re.search(r"\(([^()]*)\)$", regime)
    return f"; {found.group(1)}" if found else ""


def chart(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    times = [r for r in rows(data) if "ratio" in r]
    kinds = list(dict.fromkeys(kind(r["regime"]) for r in times))
    colors = ["#ee7733", "#0077bb", "#bbbbbb", "#009988", "#ee3377"]
    color_of = {k: colors[n % len(colors)] for n, k in enumerate(kinds)}
    labels = [f"{r['operation']} (vs {r['baseline']}{detail(r['regime'])})" for r in times]
    fig, ax = plt.subplots(figsize=(12, 0.3 * len(times) + 1.5), dpi=100)
    ratios = [r["ratio"] for r in times]
    ax.barh(range(len(times)), ratios, color=[color_of[kind(r["regime"])] for r in times])
    for k, ratio in enumerate(ratios):
        ax.text(ratio * 1.03, k, f"{ratio:.2f}x", va="center", fontsize=7)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlim(min(*ratios, 1.0) / 1.5, max(*ratios, 1.0) * 1.6)
    ax.set_yticks(range(len(times)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time / baseline's time in the same run (median of paired rounds; "
                  "log scale; < 1 is faster)")
    ax.legend(handles=[Patch(color=color_of[k], label=k) for k in kinds], fontsize=8,
              loc="lower right")
    ax.set_title(f"yolo_io benchmarks: {machine(data)}; {data.get('datetime', '?')[:10]}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path, help="pytest-benchmark's --benchmark-json output")
    parser.add_argument("--markdown", type=Path, help="write the tables here (default: stdout)")
    parser.add_argument("--chart", type=Path, help="write a PNG chart here (needs matplotlib)")
    args = parser.parse_args(argv)
    try:
        data = json.loads(args.json.read_text())
    except (OSError, ValueError) as err:
        print(f"report.py: cannot read {args.json}: {err}", file=sys.stderr)
        return 2
    if not isinstance(data, dict) or "benchmarks" not in data:
        print(f"report.py: {args.json} is not pytest-benchmark JSON", file=sys.stderr)
        return 2
    text = markdown(data)
    if args.markdown:
        args.markdown.write_text(text)
    else:
        print(text)
    if args.chart:
        try:
            chart(data, args.chart)
        except ImportError:
            print("report.py: --chart needs matplotlib: python -m pip install 'yolo_io[plot]'",
                  file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
