"""The per-class threshold curves of a report: one-vs-rest ROC and precision-recall, as
matplotlib Figure objects made without pyplot (see `plots`)."""

from __future__ import annotations

from mnistlab.reports.plots import colormap, figure


def class_curves(curves: list[dict], class_names, title: str = ""):
    """ROC (left) and precision-recall (right) curves of each class against the rest, one
    colour per class, its area in the legend.

    curves: `metrics.one_vs_rest`'s list, one dict per class (classes without positives are
    left out: they have no curve).
    """
    fig = figure((12, 5.4))
    ax_roc, ax_pr = fig.subplots(1, 2)
    cmap = colormap("tab10" if len(class_names) <= 10 else "tab20")
    for cls, (curve, name) in enumerate(zip(curves, class_names, strict=True)):
        if not curve["positives"]:
            continue
        colour = cmap(cls % 20)
        ax_roc.plot(
            curve["fpr"],
            curve["tpr"],
            color=colour,
            lw=1.2,
            label=f"{name} ({curve['roc_auc']:.4f})",
        )
        # average precision is the area under this staircase: precision[i] from recall[i-1]
        # to recall[i]
        ax_pr.plot(
            curve["recall"],
            curve["precision"],
            color=colour,
            lw=1.2,
            drawstyle="steps-pre",
            label=f"{name} ({curve['average_precision']:.4f})",
        )
    ax_roc.plot([0, 1], [0, 1], color="0.6", lw=0.8, linestyle="--", label="chance (0.5)")
    ax_roc.set_xlabel("false positive rate")
    ax_roc.set_ylabel("true positive rate")
    ax_roc.set_title("ROC, one class against the rest (AUC)")
    ax_roc.legend(fontsize=7, loc="lower right", title="class (AUC)", title_fontsize=7)
    ax_pr.set_xlabel("recall")
    ax_pr.set_ylabel("precision")
    ax_pr.set_title("precision-recall, one class against the rest (AP)")
    ax_pr.legend(fontsize=7, loc="lower left", title="class (average precision)", title_fontsize=7)
    for ax in (ax_roc, ax_pr):
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.02)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


__all__ = ["class_curves"]
