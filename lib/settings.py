"""pipeline.yaml read and checked in one place: the steps in run order and the profiles, each
profile with its dataset, its step parameters and its training settings (``train``: ``common``,
``teacher``, ``student``, which :func:`lib.training.config.train_config` turns into a
``TrainConfig``). Every reader of pipeline.yaml (the runner, the training notebooks, the
pretraining lookup, the lever table) goes through :func:`load_pipeline`; a file is parsed once
per process and read again when it changes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from lib.data.synthetic.generate import generate
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

    def render(self, root: Path) -> Path:
        """This synthetic set at ``root``, rendered on every core unless a complete one with
        these settings is there (:func:`lib.data.synthetic.generate.generate`); returns ``root``."""
        return generate(root, self.train, self.test, self.seed, workers=os.cpu_count() or 1, levers=self.levers)


@dataclass(frozen=True)
class Profile:
    """A profile: its dataset, the parameters of all steps (``params``) and of each (``steps``),
    the steps it leaves out of a full run (``skip``) and its training settings (``train``)."""

    name: str
    dataset: Dataset
    params: dict
    steps: dict
    skip: tuple[str, ...] = ()
    train: dict = field(default_factory=dict)


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
    """The pipeline file at ``path`` (against the project root), checked: unique step names,
    profiles that configure only known steps, known renderer levers."""
    path = resolve(path)
    return _parse(path, path.stat().st_mtime_ns)


@lru_cache(maxsize=8)
def _parse(path: Path, modified: int) -> PipelineSpec:
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
            dict(body.get("train") or {}),
        )
    return PipelineSpec(steps, profiles, path)
