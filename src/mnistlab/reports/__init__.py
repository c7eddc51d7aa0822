"""Reports: self-contained HTML pages and the figures in them.

- ``html``: the building blocks every page shares: page, section, table, embedded figures
  (``Figures``: also saved as files into a folder when asked)
- ``plots``: the figures, as matplotlib Figure objects made without pyplot (matplotlib imported
  lazily; a notebook shows them inline)
- ``curve_plots``, ``conv_plots``, ``comparison_plots``, ``sweep_plots``: the figures of the
  learning curves, a convolution's kernels and feature maps, the comparison and the sweep report
- ``line_styles``: a distinct colour, marker and dash for every run or trial in one figure
- ``fitted_table``: tables that fit the page (long cells break, short ones stay whole)
- ``analysis``: PCA from scratch and a layer's activations, for the activation map
- ``effective_config``: the value each configuration key had in effect (an optimizer's default
  for a blank setting, "not used" for a key the model or optimizer ignores)
- ``sections``, ``config_section``, ``learned_section``: the sections of a model's report, drawn
  from a ``ReportContent``
- ``run_report``: ``build_report``, one run's report.html (also the hook ``train_run`` takes)
- ``model_report``: ``build_model_report``, the same page for a fitted model in memory
- ``comparison``: ``build_comparison``, several runs side by side
- ``sweep_report``, ``sweep_summaries``: ``build_sweep_report``, a study's report.html (the hook
  ``run_sweep`` takes), and its per-parameter marginal means

The top of the dependency graph beside the CLI: reports read run folders (through
`experiments.run_folder`) and models; nothing below imports them.
"""

from mnistlab.reports.comparison import build_comparison
from mnistlab.reports.model_report import build_model_report
from mnistlab.reports.run_report import build_report
from mnistlab.reports.sweep_report import build_sweep_report

__all__ = ["build_comparison", "build_model_report", "build_report", "build_sweep_report"]
