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
            "--workloads",
            "mlp",
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


# ------------------------------------------------------------------------------------ CNN rows


def _tiny_cnn_spec() -> dict:
    """The bench's CNN settings on digits (8 x 8 images), two steps an epoch, one of each."""
    from mnistlab.data import load_dataset

    digits = load_dataset("digits")
    return {
        **settings(quick=True, dataset="digits", workloads=("cnn",)),
        "n_train": digits.n_train,
        "n_test": digits.n_test,
        "n_features": 64,
        "image_shape": list(digits.image_shape),
        "cnn_train": 256,
        "cnn_epochs": 1,
        "cnn_floor_steps": 1,
        "cnn_inference_repeats": 1,
    }


def test_cnn_rows_follow_the_cnn_preset_and_quick_times_part_of_an_epoch():
    from mnistlab.experiments.presets import get_preset

    preset = get_preset("cnn")
    quick = settings(quick=True, workloads=("mlp", "cnn"))
    assert quick["cnn"]["conv"] == list(preset["conv"])
    assert quick["cnn"]["batch_size"] == preset["batch_size"]
    assert quick["cnn_train"] == 60 * preset["batch_size"]  # 60 steps, scaled up
    assert settings(quick=False, workloads=("cnn",))["cnn_train"] is None  # every image
    assert not settings(quick=True, workloads=("cnn",))["classical"]
    assert "cnn" not in settings(quick=True)


def test_the_cnn_floor_holds_every_gemm_of_the_im2col_step():
    from mnistlab.bench.cnn import _gemm_operands

    spec = {**settings(quick=True, workloads=("cnn",)), "image_shape": [28, 28]}
    net = spec["cnn"]
    training = _gemm_operands(spec, 4, training=True)
    kernel_offsets = net["kernel"] ** 2
    # conv1: product and kernel gradient (no input gradient for the data); every later
    # convolution one input-gradient product per kernel offset too; each Dense three
    n_conv, n_dense = len(net["conv"]), len(net["hidden"]) + 1
    assert len(training) == 2 * n_conv + (n_conv - 1) * kernel_offsets + 3 * n_dense
    forward = _gemm_operands(spec, 4, training=False)
    assert len(forward) == n_conv + n_dense
    conv2 = forward[1]  # windows (4 images x 14 x 14, 3 x 3 x 32) @ kernel (288, 64)
    assert conv2[0].shape == (4 * 14 * 14, kernel_offsets * net["conv"][0])
    assert conv2[2].shape == (4 * 14 * 14, net["conv"][1])
    for a, b, out in training:
        assert a.shape[1] == b.shape[0] and out.shape == (a.shape[0], b.shape[1])


def test_a_cnn_worker_times_a_handful_of_steps_scaled_to_the_epoch():
    from mnistlab.bench.runners import run_floor, run_mnistlab

    spec = _tiny_cnn_spec()
    data = workloads.load_data("digits")
    ours = run_mnistlab(data, spec)["results"]
    assert set(ours) == {"cnn_train", "cnn_inference_10k"}  # no MLP rows in --workloads cnn
    train = ours["cnn_train"]
    assert len(train["times"]) == 1 and len(train["floor_times"]) == 1
    assert train["images_per_epoch"] == 256 and train["scale"] == pytest.approx(1438 / 256)
    assert train["accuracy_epochs"] == 2 and 0 <= train["accuracy"] <= 1
    assert len(ours["cnn_inference_10k"]["floor_times"]) == 1
    floor = run_floor(data, spec)["results"]
    assert set(floor) == {"cnn_gemm_epoch", "cnn_inference_10k"}


def test_pytorch_builds_the_same_cnn_and_a_missing_pytorch_is_skipped(monkeypatch):
    from mnistlab.bench import runners
    from mnistlab.bench.cnn import build_network
    from mnistlab.bench.cnn_runners import torch_cnn_network

    spec = _tiny_cnn_spec()
    torch = pytest.importorskip("torch")
    theirs = torch_cnn_network(torch.nn, spec)
    ours = build_network(spec)
    assert sum(p.numel() for p in theirs.parameters()) == ours.parameters().size
    assert theirs(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    monkeypatch.setattr(runners, "_missing", lambda *modules: "torch is not installed (pip ...)")
    assert runners.run_torch({}, spec) == {"skipped": "torch is not installed (pip ...)"}


def _cnn_report(ours: float, torch: float | None, keras: float = 9.0) -> dict:
    def summary(median, **extra):
        return {"median": median, "spread": 0.0, "times": [median] * 2, **extra}

    def trained(median):
        return summary(median, accuracy=0.8, accuracy_epochs=3, images_per_epoch=7680)

    spec = {
        **settings(quick=True, workloads=("cnn",)),
        "n_train": 60000,
        "n_test": 10000,
        "n_features": 784,
        "image_shape": [28, 28],
    }
    frameworks = {
        "floor": {
            "results": {"cnn_train": summary(4.0), "cnn_gemm_epoch": summary(3.8)},
            "blas": ["openblas"],
        },
        "mnistlab": {"results": {"cnn_train": trained(ours), "cnn_inference_10k": summary(0.5)}},
        "keras-jax": {"results": {"cnn_train": trained(keras), "cnn_inference_10k": summary(1.0)}},
    }
    if torch is None:
        frameworks["pytorch"] = {"skipped": "torch is not installed (pip install -e '.[bench]')"}
    else:
        frameworks["pytorch"] = {
            "results": {"cnn_train": trained(torch), "cnn_inference_10k": summary(0.6)}
        }
    report = {
        "settings": spec,
        "machine": {"cpu": "cpu", "cores": 2, "python": "3.11"},
        "seconds": 1.0,
        "frameworks": frameworks,
    }
    report["ratios"] = ratios(report)
    report["targets"] = targets(report)
    return report


def test_cnn_targets_against_pytorch_and_the_rows_printed():
    report = _cnn_report(7.0, 10.0)
    checks = {c["workload"]: c for c in report["targets"]}
    train = checks["cnn_train"]
    assert train["target"] == "<= 1.0x PyTorch eager (moonshot 0.8x)"
    assert train["value"] == pytest.approx(0.7) and train["met"] and train["moonshot"]
    assert checks["cnn_inference_10k"]["met"] and "moonshot" not in checks["cnn_inference_10k"]
    assert report["ratios"]["cnn_train"]["floor"] == pytest.approx(7.0 / 4.0)
    text = format_report(report)
    for line in (
        "CNN train epoch (preset cnn)",
        "CNN inference, 10,000 images",
        "met, the moonshot too",
        "epochs over the first 7,680 training images only, times scaled up x7.81 to 60,000",
        "mnistlab's CNN epoch 7.00 s against its im2col GEMMs alone 4.00 s: 1.75x",
        "the CNN's epoch 3.800 s",
        "CNN test accuracy after 3 epochs of 7,680 images (first round): mnistlab 0.8000",
    ):
        assert line in text, line
    assert "train epoch, SGD" not in text  # the MLP rows were not selected
    slower = _cnn_report(9.0, 10.0)
    assert [c["met"] for c in slower["targets"]] == [True, True]
    assert not slower["targets"][0]["moonshot"] and "moonshot too" not in format_report(slower)
    assert not _cnn_report(11.0, 10.0)["targets"][0]["met"]


def test_cnn_rows_without_pytorch_report_it_skipped_and_check_no_target():
    report = _cnn_report(7.0, None)
    assert report["targets"] == []
    text = format_report(report)
    assert "pytorch: skipped, torch is not installed" in text
    assert "CNN train epoch (preset cnn)" in text and "keras-jax" in text


def test_workloads_choose_the_rows_and_the_frameworks_that_have_them(capsys):
    from mnistlab.bench.rounds import _with_rows

    lines = []
    kept = _with_rows(["floor", "mnistlab", "seed-numpy", "pytorch"], ["cnn"], lines.append)
    assert kept == ["floor", "mnistlab", "pytorch"]
    assert lines == ["  seed-numpy: no rows in --workloads cnn, left out"]
    assert main(["bench", "--workloads", "mlp,rnn"]) == 2
    assert "--workloads must name some of mlp, cnn, got ['mlp', 'rnn']" in capsys.readouterr().err


@pytest.mark.parametrize("threads", [1, 2])
def test_the_cnn_breakdown_accounts_for_every_layer_and_the_conv_parts(threads, monkeypatch):
    """At one BLAS thread the second convolution (3x3 over 32 channels) runs Winograd's route,
    at two im2col's (nn.conv.Conv2D.forward); the first (one channel) always copies windows."""
    from mnistlab.bench.breakdown import cnn_breakdown, format_breakdown
    from mnistlab.train import trainer as trainer_module

    monkeypatch.setattr(trainer_module, "auto_blas_threads", lambda *args, **kwargs: threads)
    spec = _tiny_cnn_spec()
    result = cnn_breakdown(spec, workloads.load_data("digits"), steps=2, warmup=1)
    result["dataset"] = "digits"
    assert result["threads"] == threads
    rows = result["rows"]
    conv1, conv2 = "Conv2D 1->32 on 8x8", "Conv2D 32->64 on 4x4"
    for row in (conv1, conv2, "ReLU", "MaxPool2D", "Dense", "Dropout", "Adam step"):
        assert row in rows, row
    assert f"{conv1}  im2col copy" in rows and f"{conv1}  col2im adds" not in rows
    assert rows[f"{conv1}  im2col copy"][0] > 0
    gemms, transforms = (
        f"{conv2}  Winograd {part}" for part in ("GEMMs (16 positions)", "transforms")
    )
    text = format_breakdown(result)
    if threads == 1:
        assert f"{conv2}  im2col copy" not in rows
        assert rows[gemms][0] > 0 and rows[gemms][1] > 0 and rows[transforms][1] > 0
        assert "  Winograd transforms" in text
    else:
        assert gemms not in rows and rows[f"{conv2}  col2im adds"][1] > 0
        assert "  col2im adds" in text
    assert result["layers"]["ReLU"] == 3 and len(result["plain"]) == 2
    assert "ReLU (x3)" in text and "x the floor" in text
