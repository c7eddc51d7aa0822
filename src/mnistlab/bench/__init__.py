"""`mnistlab bench`: the engine side by side with PyTorch, Keras on JAX and scikit-learn.

Each framework runs in a process of its own (their thread pools never share a process), on the
same data and network; the processes take turns, one timed epoch (or repeat, or fit) at a time,
so that the shared host's slow minutes fall on every framework alike. The harness collects
every runner's medians and spreads, and reports the ratios of mnistlab to each peer and to the
bare-GEMM floor, the accuracy each framework reaches after the same budget, the machine, and
the targets.

    workloads   what is measured, and how it is timed (shared by every runner)
    cnn         the CNN rows' network (the cnn preset), their GEMM floor and timing
    runners     one runner per framework (cnn_runners: their CNN rows); worker: the process
                that runs one of them
    harness     the frameworks' processes taking turns (run_in_turns)
    rounds      run_bench: rounds of turns, times pooled, ratios and targets added
    targets     the frameworks, mnistlab's ratios to each, the targets
    format      the report as text and as JSON
    breakdown   `--cnn-breakdown`: where a step of mnistlab's CNN goes, layer by layer
"""

from __future__ import annotations

from mnistlab.bench.format import format_report, write_json
from mnistlab.bench.harness import run_in_turns
from mnistlab.bench.rounds import run_bench, settings
from mnistlab.bench.targets import FRAMEWORKS, ratios, targets

__all__ = [
    "FRAMEWORKS",
    "format_report",
    "ratios",
    "run_bench",
    "run_in_turns",
    "settings",
    "targets",
    "write_json",
]
