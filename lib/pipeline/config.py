"""pipeline.yaml: the steps in run order and the profiles that parameterise them.

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

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lib.data.synthetic.levers import check_levers
from lib.paths import resolve


@dataclass(frozen=True)
class Step:
    name: str
    notebook: str
    parameters: dict = field(default_factory=dict)
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    """Where a profile's data lives. ``generate`` makes the synthetic set at ``root`` if absent;
    ``prepare`` takes a folder of labelled faces from the command line (``--data``; ``root`` is
    then its default, may be None) and lays it out in the run, split by photograph, with
    ``test_fraction`` of the photographs held out for the report (:mod:`lib.data.prepare`).
    ``levers`` names the renderer levers a generated set is rendered with
    (:mod:`lib.data.synthetic.levers`)."""

    root: str | None = None
    generate: bool = True
    train: int = 0
    test: int = 0
    seed: int = 0
    levers: tuple[str, ...] = ()
    prepare: bool = False
    test_fraction: float = 0.2


@dataclass(frozen=True)
class Profile:
    """A profile: its dataset, the parameters of all steps (``params``) and of each (``steps``),
    and the steps it leaves out of a full run (``skip``)."""

    name: str
    dataset: Dataset
    params: dict
    steps: dict
    skip: tuple[str, ...] = ()


@dataclass(frozen=True)
class PipelineSpec:
    steps: list[Step]
    profiles: dict[str, Profile]
    source: Path  # the file it was read from

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            raise KeyError(f"unknown profile {name!r}; options: {sorted(self.profiles)}")
        return self.profiles[name]

    def step_names(self) -> list[str]:
        return [step.name for step in self.steps]

    def select(self, only: list[str] | None = None, start: str | None = None, skip: tuple[str, ...] = ()) -> list[Step]:
        """Steps to run: ``only`` those named, or all from ``start`` on but those in ``skip`` (a
        profile's), in pipeline order."""
        names = self.step_names()
        for name in [*(only or []), *([start] if start else [])]:
            if name not in names:
                raise KeyError(f"unknown step {name!r}; steps: {names}")
        if only:
            return [step for step in self.steps if step.name in only]
        first = names.index(start) if start else 0
        return [step for step in self.steps[first:] if step.name not in skip]


def load_pipeline(path: str | Path = "pipeline.yaml") -> PipelineSpec:
    path = resolve(path)
    spec = yaml.safe_load(path.read_text())
    steps = [Step(s["name"], s["notebook"], dict(s.get("parameters") or {}), tuple(s.get("reads", ())), tuple(s.get("writes", ()))) for s in spec["steps"]]
    if len({s.name for s in steps}) != len(steps):
        raise ValueError(f"{path}: step names must be unique")
    profiles = {}
    for name, body in spec["profiles"].items():
        unknown = (set(body.get("steps") or {}) | set(body.get("skip") or ())) - {s.name for s in steps}
        if unknown:
            raise ValueError(f"{path}: profile {name!r} configures unknown steps {sorted(unknown)}")
        profiles[name] = Profile(
            name,
            Dataset(**{**body["dataset"], "levers": check_levers(body["dataset"].get("levers") or ())}),
            dict(body.get("params") or {}),
            dict(body.get("steps") or {}),
            tuple(body.get("skip") or ()),
        )
    return PipelineSpec(steps, profiles, path)


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
