"""Reports: self-contained HTML pages and the figures in them.

- ``html``: the building blocks every page shares: page, section, table, embedded figures
  (``Figures``: also saved as files into a folder when asked)
- ``plots``: the figures (matplotlib, imported lazily, Agg)
- ``analysis``: PCA from scratch and a layer's activations, for the activation map
- ``run_report``: ``build_report``, one run's report.html (also the hook ``train_run`` takes)
- ``comparison``: ``build_comparison``, several runs side by side
- ``sweep_report``: ``build_sweep_report``, a study's report.html (the hook ``run_sweep`` takes)

The top of the dependency graph beside the CLI: reports read run folders (through
`experiments.run_folder`) and models; nothing below imports them.
"""
