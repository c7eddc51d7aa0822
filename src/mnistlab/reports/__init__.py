"""Reports: figures (matplotlib, imported lazily), the run report, the comparison of runs, the
sweep report, and the analysis helpers they draw from (PCA, a layer's activations).

The top of the dependency graph beside the CLI: reports read run folders and models; nothing
below imports them.
"""
