"""The Python floor of a replay: the least work any Python replay of a trace must do.

Start Python, ``import numpy``, parse every line of the trace JSONL, and push and pop three heap events per
request (an arrival, a first token, a finish). No simulation at all: a replay's process wall time divided by
this one's, measured on the same machine in the same run, is a speed figure that does not move with the
machine (absolute times move 3× between machines; this ratio does not). Run it as a fresh process::

    python benchmarks/floor.py TRACE.jsonl
"""

from __future__ import annotations

import heapq
import json
import sys

import numpy as np


def main(path: str) -> None:
    heap: list[tuple[int, int, int]] = []
    n = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            t = int(row["timestamp"])
            for kind in range(3):
                heapq.heappush(heap, (t + kind, n, kind))
            n += 1
    while heap:
        heapq.heappop(heap)
    print(json.dumps({"requests": n, "numpy": np.__version__}))


if __name__ == "__main__":
    main(sys.argv[1])
