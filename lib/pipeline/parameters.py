"""The parameters of a step's notebook, from pipeline.yaml (read by :mod:`lib.settings`).

A step's parameters are resolved in this order, later winning:
  1. the step's own ``parameters`` in pipeline.yaml,
  2. the profile's ``params`` (shared by all steps; only passed to notebooks that declare them),
  3. the profile's ``steps: {<step name>: {...}}``,
  4. command-line overrides ``--set key=value`` (YAML-typed values).
``data_root`` is the profile's ``dataset.root`` (a prepared run: the tree it lays out in the run
folder, :mod:`lib.data.prepare`), ``profile`` is its name, ``config`` the
pipeline file itself (the training notebooks read the profile's ``train`` section from it) and
``run_dir`` is the run's step folder.
"""

from __future__ import annotations

from pathlib import Path

from lib.settings import Profile, Step


def step_parameters(step: Step, profile: Profile, declared: set[str], overrides: dict, run_dir: Path, config: Path, data_root: Path) -> dict:
    """The parameters passed to ``step``'s notebook, restricted to those it ``declared``
    (``config``: the pipeline file the step and profile come from; ``data_root``: the labelled
    tree the steps read)."""
    merged = {
        "data_root": str(data_root),
        "profile": profile.name,
        "config": str(config),
        **step.parameters,
        **profile.params,
        **profile.steps.get(step.name, {}),
        **overrides,
        "run_dir": str(run_dir),
    }
    return {key: value for key, value in merged.items() if key in declared}
