"""`mnistlab bench`: each framework in its own process, ratios, targets, skipped frameworks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnistlab.bench import workloads
from mnistlab.bench.format import format_report
from mnistlab.bench.harness import cpu_times, run_in_turns
from mnistlab.bench.rounds import _pool, settings
from mnistlab.bench.runners import _missing
from mnistlab.bench.targets import ratios, targets
from mnistlab.bench.workloads import ACCURACY_EPOCHS, gemm_floor, train_and_time
from mnistlab.cli import main


def test_train_and_time_times_all_but_the_warm_up_and_checks_accuracy_at_the_budget():
    epochs = []
    checked = []
    summary = train_and_time(
        lambda: epochs.append(1), lambda: checked.append(len(epochs)) or 0.5, 2, accuracy=True
    )
    assert len(summary["times"]) == 2  # 1 warm-up + 2 timed, then trained on to the budget
    assert checked == [ACCURACY_EPOCHS] and len(epochs) == ACCURACY_EPOCHS
    assert summary["accuracy"] == 0.5 and summary["median"] >= 0
    epochs.clear()
    checked.clear()
    train_and_time(lambda: epochs.append(1), lambda: checked.append(len(epochs)) or 1.0, 7, True)
    assert checked == [ACCURACY_EPOCHS] and len(epochs) == 8  # evaluated at 5, not at the end


def test_every_probe_runs_after_a_rest(monkeypatch):
    # A framework's thread pool spins for a while after its work; the probe measures the machine.
    events = []
    monkeypatch.setattr(workloads.time, "sleep", lambda s: events.append(("rest", s)))

    def probe():
        events.append(("probe",))
        return [0.5]

    summary = workloads.timed_with_probe(lambda: events.append(("fn",)), probe, repeats=2)
    assert summary["floor_times"] == [0.5, 0.5]
    assert [e for e in events if e[0] != "fn"] == [("rest", workloads.SETTLE), ("probe",)] * 2
    assert events[events.index(("probe",)) - 2 : events.index(("probe",))] == [
        ("fn",),
        ("rest", workloads.SETTLE),
    ]
    events.clear()
    train_and_time(lambda: events.append(("fn",)), None, 2, accuracy=False, between=probe)
    assert events == [("fn",)] + [("fn",), ("rest", workloads.SETTLE), ("probe",)] * 2
    events.clear()
    workloads.probe_once(lambda: events.append(("fn",)), probe)
    assert events == [("probe",), ("fn",), ("rest", workloads.SETTLE), ("probe",)]


def test_gemm_floor_runs_every_step():
    times = gemm_floor(1000, 128, 2)
    assert len(times) == 2 and all(t > 0 for t in times)


def test_a_missing_framework_is_reported_as_skipped():
    assert "pip install -e '.[bench]'" in _missing("no_such_framework_here")
    assert _missing("numpy") is None


def _fake(median_ours, peers):
    def result(median, accuracy=None):
        summary = {"median": median, "spread": 0.01, "times": [median, median]}
        if accuracy is not None:
            summary["accuracy"] = accuracy
        return summary

    workloads = ["train_sgd_b32", "train_sgd_b128", "train_adam_b32", "train_adam_b128"]
    report = {
        "settings": {
            "dataset": "fashion-mnist",
            "quick": False,
            "epochs": 5,
            "inference_repeats": 20,
            "knn_test": 10000,
            "n_train": 60000,
            "n_test": 10000,
            "n_features": 784,
            "rounds": 2,
        },
        "machine": {"cpu": "cpu", "cores": 2, "python": "3.11"},
        "seconds": 1.0,
        "frameworks": {
            "floor": {"results": {w: result(0.3) for w in workloads}, "blas": ["openblas"]},
            "mnistlab": {
                "versions": {"mnistlab": "x"},
                "results": {
                    **{w: result(median_ours) for w in workloads},
                    "train_adam_b128": result(median_ours, 0.85),
                    "inference_10k": result(0.01),
                    "softmax": {"median": 2.0, "spread": 0, "times": [2.0], "accuracy": 0.845},
                },
            },
            **{
                name: {
                    "versions": {name: "1"},
                    "results": {
                        **{w: result(m) for w in workloads},
                        "inference_10k": result(0.02),
                    },
                }
                for name, m in peers.items()
            },
            "keras-jax": {"skipped": "jax is not installed (pip install -e '.[bench]')"},
        },
    }
    report["ratios"] = ratios(report)
    report["targets"] = targets(report)
    return report


def test_ratios_and_targets():
    report = _fake(0.4, {"pytorch": 0.6, "scikit-learn": 2.0})
    row = report["ratios"]["train_sgd_b32"]
    assert row["pytorch"] == pytest.approx(0.4 / 0.6)
    assert row["floor"] == pytest.approx(0.4 / 0.3)
    assert row["fastest_peer"] == "pytorch"
    checks = {(c["workload"], c["target"]): c for c in report["targets"]}
    assert checks[("train_sgd_b32", "<= 0.8x the fastest peer (pytorch)")]["met"]
    assert checks[("train_sgd_b32", "<= 1.7x the GEMM floor")]["met"]
    assert checks[("train_sgd_b128", "<= 1.5x the GEMM floor")]["value"] == pytest.approx(4 / 3)
    assert checks[("inference_10k", "<= 1.0x PyTorch")]["met"]
    assert checks[("softmax", ">= 84% test accuracy")]["met"]
    text = format_report(report)
    assert "keras-jax: skipped, jax is not installed" in text
    assert "test accuracy after 5 epochs of Adam at batch 128: mnistlab 0.8500" in text
    assert "NOT MET" not in text


def test_slower_than_the_fastest_peer_is_not_met():
    report = _fake(0.7, {"pytorch": 0.6})
    peer = [c for c in report["targets"] if "fastest peer" in c["target"]]
    assert peer and not any(c["met"] for c in peer)
    assert "NOT MET" in format_report(report)


@pytest.mark.slow
def test_bench_cli_on_digits_runs_each_framework_in_its_own_process(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(
        [
            "bench",
            "--quick",
            "--dataset",
            "digits",
            "--only",
            "floor,mnistlab,seed-numpy,pytorch,scikit-learn",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "train epoch, SGD, batch 32" in text and "targets:" in text
    report = json.loads(out.read_text())
    for name in ("floor", "mnistlab", "seed-numpy", "scikit-learn"):
        assert "results" in report["frameworks"][name], report["frameworks"][name]
    ours = report["frameworks"]["mnistlab"]["results"]
    assert ours["train_adam_b128"]["accuracy"] > 0.8  # digits after 5 epochs of Adam
    assert len(ours["train_sgd_b32"]["times"]) == 2
    assert (
        "pytorch" in report["ratios"]["inference_10k"]
        or "skipped" in report["frameworks"]["pytorch"]
    )


def test_bench_usage_errors(capsys):
    assert main(["bench", "--only", "floor,tensorflow"]) == 2
    assert "unknown frameworks ['tensorflow']" in capsys.readouterr().err
    assert main(["bench", "--only", "floor,pytorch"]) == 2
    assert "--only must include mnistlab" in capsys.readouterr().err


def test_a_failing_runner_is_reported_not_raised():
    spec = {**settings(quick=True), "dataset": "no-such-dataset-anywhere"}
    result = run_in_turns(["mnistlab"], spec, timeout=120)["mnistlab"]
    assert "error" in result


@pytest.mark.slow
def test_frameworks_take_turns_epoch_by_epoch_each_in_its_own_process():
    spec = {**settings(quick=True, dataset="digits"), "classical": False}
    log = []
    results = run_in_turns(["mnistlab", "seed-numpy"], spec, pause=0.0, log=log)
    assert log[:6] == ["mnistlab", "seed-numpy"] * 3  # alternating while both have epochs left
    mnistlab, seed = results["mnistlab"], results["seed-numpy"]
    assert len(mnistlab["results"]["train_adam_b128"]["times"]) == spec["epochs"]
    assert len(seed["results"]["train_sgd_b32"]["times"]) == spec["epochs"]
    # one turn per timed epoch and inference repeat, and the last one that finds it finished
    assert mnistlab["turns"] == 4 * spec["epochs"] + spec["inference_repeats"] + 1
    assert mnistlab["steal"]["cpu"] > 0
    failed = run_in_turns(["mnistlab"], {**spec, "dataset": "no-such-dataset-anywhere"})
    assert "error" in failed["mnistlab"]


def test_rounds_pool_the_times_and_keep_the_first_rounds_extras():
    first = {
        "seconds": 1.0,
        "results": {
            "train_sgd_b32": {
                "median": 1.0,
                "spread": 0.0,
                "times": [1.0, 1.0],
                "floor_times": [0.5],
                "accuracy": 0.9,
            },
            "knn_1nn": {"median": 3.0, "spread": 0.0, "times": [3.0]},
        },
    }
    second = {
        "seconds": 2.0,
        "results": {
            "train_sgd_b32": {
                "median": 2.0,
                "spread": 0.0,
                "times": [2.0, 2.0, 2.0],
                "floor_times": [0.7],
            }
        },
    }
    pooled = _pool(first, second)
    row = pooled["results"]["train_sgd_b32"]
    assert row["times"] == [1.0, 1.0, 2.0, 2.0, 2.0] and row["median"] == 2.0
    assert row["spread"] == 1.0 and row["accuracy"] == 0.9 and row["floor_times"] == [0.5, 0.7]
    assert pooled["results"]["knn_1nn"]["median"] == 3.0 and pooled["seconds"] == 3.0
    assert _pool(first, {"error": "boom"}) is first
    first["steal"], second["steal"] = {"steal": 1.0, "cpu": 10.0}, {"steal": 3.0, "cpu": 10.0}
    assert _pool(first, second)["steal"] == {"steal": 4.0, "cpu": 20.0}


def test_the_cpu_time_stolen_by_the_host_is_reported_per_framework():
    now = cpu_times()
    if Path("/proc/stat").exists():
        assert now["total"] > 0 and 0 <= now["steal"] <= now["total"]
    report = _fake(0.4, {"pytorch": 0.6})
    report["frameworks"]["mnistlab"]["steal"] = {"steal": 3.0, "cpu": 20.0}
    report["frameworks"]["pytorch"]["steal"] = {"steal": 0.0, "cpu": 20.0}
    text = format_report(report)
    assert "(steal) while each framework ran: mnistlab 15%, pytorch 0%" in text


def test_ratios_divide_out_the_machine_speed_of_each_process():
    def timed_on(machine_speed, seconds, floor):
        times = [seconds * machine_speed] * 3
        return {
            "median": times[0],
            "spread": 0.0,
            "times": times,
            "floor_times": [floor * machine_speed] * 3,
        }

    report = {
        "frameworks": {
            # mnistlab ran while the machine was twice as slow: 1.0 s raw, 0.5 s in calm time
            "mnistlab": {"results": {"train_sgd_b32": timed_on(2.0, 0.5, 0.25)}},
            "pytorch": {"results": {"train_sgd_b32": timed_on(1.0, 0.8, 0.25)}},
        }
    }
    row = ratios(report)["train_sgd_b32"]
    assert row["pytorch"] == pytest.approx(0.5 / 0.8)
    assert row["raw"]["pytorch"] == pytest.approx(1.0 / 0.8)
    assert row["fastest_peer"] == "pytorch"
