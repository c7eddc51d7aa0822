"""One framework's benchmark in its own process: `python -m mnistlab.bench.worker NAME SPEC OUT`.

SPEC is the JSON of the harness's settings; the result is written to OUT as JSON (atomically).
Under `mnistlab bench` the worker takes turns with the other frameworks' workers
(`mnistlab.bench.workloads.Turns`): it starts computing, data loading included, only when given
its first turn.
"""

from __future__ import annotations

import json
import sys
import time
import traceback

from mnistlab._io import write_text_atomic
from mnistlab.bench.runners import RUNNERS
from mnistlab.bench.workloads import TURNS, load_data


def main(argv: list[str]) -> int:
    name, spec_text, out = argv
    spec = json.loads(spec_text)
    TURNS.wait()
    started = time.perf_counter()
    try:
        data = load_data(spec["dataset"])
        result = RUNNERS[name](data, spec)
        status = 0
    except Exception as exc:  # reported by the harness as this framework's error
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
        status = 1
    result["seconds"] = time.perf_counter() - started
    write_text_atomic(out, json.dumps(result, indent=1) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
