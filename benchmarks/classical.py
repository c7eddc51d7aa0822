"""The classical models on full Fashion-MNIST (or digits), side by side with scikit-learn.

Each workload runs in its own subprocess, one after another, so that timings and peak memory are
its own. Prints seconds (fit + predict), test accuracy and peak resident memory for mnistlab and
for the scikit-learn equivalent with matched settings, and the ratio of the two times.

    .venv/bin/python benchmarks/classical.py [--only knn1,knn5,gaussian,...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

WORKLOADS = {
    # name: (mnistlab constructor, scikit-learn constructor or None, note)
    "knn1": (
        "KNeighborsClassifier(n_neighbors=1)",
        "neighbors.KNeighborsClassifier(n_neighbors=1, algorithm='brute')",
        "1-NN, L2",
    ),
    "knn5": (
        "KNeighborsClassifier(n_neighbors=5)",
        "neighbors.KNeighborsClassifier(n_neighbors=5, algorithm='brute')",
        "5-NN, L2",
    ),
    "gaussian-matched": (
        "GaussianClassifier(smoothing=0.5, shrinkage=0.5)",
        "discriminant_analysis.QuadraticDiscriminantAnalysis(reg_param=0.5)",
        "QDA reg_param r: (1-r) S + r I, here shrinkage = smoothing = 0.5",
    ),
    "gaussian-found": (
        "GaussianClassifier(smoothing=0.0032, shrinkage=0.95)",
        None,
        "c and s that smoothing='auto' chose on Fashion-MNIST's validation split",
    ),
    "gaussian-auto": (
        "GaussianClassifier(smoothing='auto')",
        None,
        "smoothing chosen on a 20% validation split",
    ),
    "naive-bayes": (
        "GaussianClassifier(diagonal=True, smoothing=float(1e-9 * X.var(axis=0).max()))",
        "naive_bayes.GaussianNB()",
        "GaussianNB's var_smoothing=1e-9 of the largest variance",
    ),
    "softmax-sgd": (
        "SoftmaxRegression()",
        "linear_model.LogisticRegression(max_iter=100)",
        "ours: minibatch SGD, 10 epochs; theirs: multinomial L-BFGS, 100 iterations",
    ),
    "logistic-ova": (
        "OneVsAllLogistic(C=1.0, max_iter=100)",
        "multiclass.OneVsRestClassifier(linear_model.LogisticRegression(C=1.0, max_iter=100))",
        "same C, L-BFGS, 100 iterations per class",
    ),
}

CHILD = r"""
import json, resource, sys, time
import numpy as np
from mnistlab.data import load_dataset, to_float, flatten
side, name, expression, dataset = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
data = load_dataset(dataset)
X = flatten(to_float(data.x_train, data.pixel_max))
Xt = flatten(to_float(data.x_test, data.pixel_max))
y, yt = data.y_train, data.y_test
if side == "mnistlab":
    from mnistlab.models import *  # noqa
else:
    import warnings
    warnings.filterwarnings("ignore")
    from sklearn import discriminant_analysis, linear_model, multiclass  # noqa
    from sklearn import naive_bayes, neighbors  # noqa
model = eval(expression)
started = time.perf_counter()
model.fit(X, y)
fitted = time.perf_counter()
predicted = model.predict(Xt)
done = time.perf_counter()
print(json.dumps({"fit": fitted - started, "predict": done - fitted, "seconds": done - started,
                  "accuracy": float(np.mean(predicted == yt)),
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "predictions": predicted.astype(int).tolist() if name[:3] == "knn" else None}))
"""


def run(side: str, name: str, expression: str, dataset: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, side, name, expression, dataset],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated workloads: " + ",".join(WORKLOADS))
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist or digits")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(WORKLOADS)
    try:
        import sklearn  # noqa: F401

        have_sklearn = True
    except ImportError:
        have_sklearn = False
    print(
        f"{'workload':<18} {'mnistlab s':>10} {'acc':>7} {'MiB':>6}  {'sklearn s':>9} {'acc':>7} "
        f"{'MiB':>6}  {'ratio':>6}  note"
    )
    results = {}
    for name in names:
        ours_expr, theirs_expr, note = WORKLOADS[name]
        ours = run("mnistlab", name, ours_expr, args.dataset)
        theirs = (
            run("sklearn", name, theirs_expr, args.dataset)
            if theirs_expr and have_sklearn
            else None
        )
        results[name] = {"mnistlab": ours, "sklearn": theirs, "note": note}
        if theirs and ours.get("predictions") and theirs.get("predictions"):
            same = ours["predictions"] == theirs["predictions"]
            note += f"; predictions identical: {same}"
        for side in (ours, theirs):
            if side:
                side.pop("predictions", None)

        def cell(side, key, fmt):
            return format(side[key], fmt) if side and key in side else "-"

        ratio = (
            f"{ours['seconds'] / theirs['seconds']:.2f}"
            if theirs and "seconds" in theirs and "seconds" in ours
            else "-"
        )
        print(
            f"{name:<18} {cell(ours, 'seconds', '10.2f')} {cell(ours, 'accuracy', '7.4f')} "
            f"{cell(ours, 'peak_mib', '6.0f')}  {cell(theirs, 'seconds', '9.2f')} "
            f"{cell(theirs, 'accuracy', '7.4f')} {cell(theirs, 'peak_mib', '6.0f')}  "
            f"{ratio:>6}  {note}",
            flush=True,
        )
        if "error" in ours:
            print(f"  mnistlab failed: {ours['error']}")
        if theirs and "error" in theirs:
            print(f"  scikit-learn failed: {theirs['error']}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {
                    "results": results,
                    "time": time.time(),
                    "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                },
                handle,
                indent=2,
            )


if __name__ == "__main__":
    main()
