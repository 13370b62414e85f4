"""Where the encoder's time goes, operator by operator, for one run of L tokens.

    python bench/encoder_ops.py [--lengths 24 200] [--backends onnx-int8 onnx] [--runs 40]
                                [--model-file FILE ...]

For each backend's cached export of the default model (exported on first use), or each
ONNX file given by --model-file (an older export, say, to set beside the current one),
this runs one sequence of L random word pieces `--runs` times on a one-thread session as
`searchctl index` runs them (ONNX Runtime's own rewrites applied, the same ones left
out), with ONNX Runtime's profiler on, and prints the whole run's median time, tokens/s,
and each kind of operator's share of the kernels' time with its microseconds per node.
The files take turns run by run, so a slower spell of the machine falls on all of them.
"""

from __future__ import annotations

import sys

sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))

from packing import POSITIONS, random_run  # noqa: E402
from quality import cpu_kind  # noqa: E402


def operator_times(profile: Path) -> tuple[Counter, Counter]:
    """Microseconds and node runs per operator kind in an ONNX Runtime profile."""
    spent: Counter = Counter()
    nodes: Counter = Counter()
    for event in json.loads(profile.read_text()):
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            kind = event["args"]["op_name"]
            spent[kind] += event["dur"]
            nodes[kind] += 1
    return spent, nodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[24, 200], help="tokens a run")
    parser.add_argument("--backends", nargs="+", default=["onnx-int8", "onnx"], choices=["onnx-int8", "onnx"])
    parser.add_argument("--model-file", type=Path, nargs="+", default=[], help="ONNX files to profile instead")
    parser.add_argument("--runs", type=int, default=40, help="timed runs of each length (after 5 warm-up runs)")
    args = parser.parse_args()
    if args.runs < 1 or min(args.lengths) < 2 or max(args.lengths) > POSITIONS:
        parser.error(f"--runs must be 1 or more and every length from 2 to {POSITIONS} (the model's positions)")

    from searchcore.onnx_runtime import new_session

    if args.model_file:
        missing = [str(f) for f in args.model_file if not f.is_file()]
        if missing:
            parser.error(f"no such ONNX file: {', '.join(missing)}")
        files = {str(f): f for f in args.model_file}
        for name, f in files.items():
            try:
                new_session(f, 1)
            except Exception as exc:  # noqa: BLE001 - any file ONNX Runtime cannot load: one line
                parser.exit(1, f"error: ONNX Runtime cannot load {name}: {str(exc).splitlines()[0][:200]}\n")
    else:
        from searchcore.embedder import Embedder

        files = {backend: Embedder(backend=backend).encoder.model_file for backend in args.backends}
    print(f"CPU {cpu_kind()}; one-thread session, one sequence a run, {args.runs} runs")
    with tempfile.TemporaryDirectory() as work:
        for length in args.lengths:
            sessions = {
                name: new_session(f, 1, profile_prefix=f"{work}/{i}-{length}")
                for i, (name, f) in enumerate(files.items())
            }
            feeds = {name: random_run([i.name for i in s.get_inputs()], length) for name, s in sessions.items()}
            for name, session in sessions.items():
                for _ in range(5):
                    session.run(None, feeds[name])
            times: dict[str, list[float]] = {name: [] for name in sessions}
            for _ in range(args.runs):
                for name, session in sessions.items():
                    started = time.perf_counter()
                    session.run(None, feeds[name])
                    times[name].append((time.perf_counter() - started) * 1000)
            for name, session in sessions.items():
                spent, nodes = operator_times(Path(session.end_profiling()))
                total, runs = sum(spent.values()), args.runs + 5
                run_ms = float(np.median(times[name]))
                print(
                    f"\n{name}: {length} tokens, {run_ms:.2f} ms a run (median), {length / run_ms * 1000:,.0f} tokens/s"
                )
                for kind, us in spent.most_common():
                    print(f"  {kind:28s} {us / total:6.1%}  {us / nodes[kind]:8.0f} us x {nodes[kind] // runs}")


if __name__ == "__main__":
    main()
