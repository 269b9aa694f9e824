"""Peak memory and time to the first line of ``textcnn predict --file`` as the input file grows.

Each size is a file of a dataset split's texts, repeated up to ``--sizes-mb`` megabytes, one per
line; each run is a fresh ``textcnn predict`` process whose stdout is read as it comes (so the time
to its first prediction is what a user piping the output sees) and whose peak resident memory
(``ru_maxrss``) it reports itself on exit. Run with ``OMP_NUM_THREADS=1`` for stable figures:

    OMP_NUM_THREADS=1 .venv/bin/python scripts/benchmark_predict_memory.py --checkpoint best.ckpt \\
        --dataset ../shared/data/sst2 --sizes-mb 2 20 200
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = ("import resource, sys\nfrom textcnn.cli import main\n"
         "try:\n    main(sys.argv[1:])\nfinally:\n"
         "    print('peak_rss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")


def write_input(texts: list[str], megabytes: float, path: Path) -> int:
    """Lines of ``texts`` repeated until the file holds ``megabytes`` MB; returns the number of lines."""
    block = "".join(" ".join(text.split()) + "\n" for text in texts).encode("utf-8")
    target, lines = int(megabytes * 1e6), 0
    with open(path, "wb") as handle:
        while handle.tell() < target:
            part = block[: target - handle.tell()]
            part = part[: part.rfind(b"\n") + 1] or block
            handle.write(part)
            lines += part.count(b"\n")
    return lines


def measure(checkpoint: str, path: Path) -> dict:
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-c", CHILD, "predict", "--checkpoint", checkpoint, "--file", str(path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = process.stdout.readline()
    first_line_s = time.monotonic() - started if first else None
    printed = 1 if first else 0
    for _ in process.stdout:
        printed += 1
    stderr = process.stderr.read().decode()
    process.wait()
    if process.returncode != 0:
        raise SystemExit(f"predict failed on {path}: {stderr.strip()[-500:]}")
    peak = int(stderr.split("peak_rss_kib")[-1].split()[0]) / 1024
    return {"first_line_s": first_line_s, "total_s": time.monotonic() - started, "printed": printed, "peak_rss_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a .ckpt or an export directory")
    parser.add_argument("--dataset", required=True, help="a dataset directory whose texts fill the input files")
    parser.add_argument("--split", default="train")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[2, 20, 200])
    args = parser.parse_args()
    import datasets

    texts = datasets.load_dataset(args.dataset, split=args.split)[args.text_column]
    print("| input | lines | first line after | whole command | peak RSS |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as directory:
        for megabytes in args.sizes_mb:
            path = Path(directory) / f"{megabytes:g}mb.txt"
            lines = write_input(texts, megabytes, path)
            figures = measure(args.checkpoint, path)
            assert figures["printed"] == lines, (figures["printed"], lines)
            print(f"| {megabytes:g} MB | {lines:,} | {figures['first_line_s']:.1f} s | {figures['total_s']:.1f} s "
                  f"| {figures['peak_rss_mb']:,.0f} MB |", flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
