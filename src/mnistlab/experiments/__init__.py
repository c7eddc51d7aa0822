"""Experiments: run configurations and presets, run folders, the run store, study files, sweeps.

`config` (every key, its default, its validation), `presets`, `runs` (a configuration in, a run
folder out), `store` (runs.db, SQLite), `study` (TOML study files), `sweep` (running a study's
trials on local processes or a Dask cluster). Builds on `models`; knows nothing of reports or
the CLI (a report is built by whoever asks for one, through the hooks these modules take).
"""
