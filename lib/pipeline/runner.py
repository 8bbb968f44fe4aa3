"""Execute the pipeline's notebooks with papermill, step by step, into a run folder."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import papermill
from papermill.exceptions import PapermillExecutionError

from lib import progress
from lib.data.prepare import PREPARED_FILE, PREPARED_FOLDER, data_headline, prepare_labelled_folder
from lib.data.splits import split_seed_of
from lib.headline import read_headline, write_headline
from lib.io import atomic_write_text
from lib.paths import PROJECT_ROOT, resolve
from lib.pipeline.parameters import step_parameters
from lib.pipeline.report import run_context, write_report
from lib.settings import PipelineSpec, Profile, Step
from lib.training.config import train_config


class StepFailed(RuntimeError):
    """A step's notebook raised; the message names the step, notebook, cell and error."""


def data_source(profile: Profile, data: str | None) -> Path:
    """The folder a run reads its faces from: ``data`` (``--data``) where the profile takes a
    folder, else its ``dataset.root``; a profile that generates its data takes none."""
    dataset = profile.dataset
    if data and dataset.generate and not dataset.prepare:
        raise ValueError(
            f"profile {profile.name!r} generates its own data at {dataset.root}: --data is for a profile of labelled faces (e.g. --profile finetune)"
        )
    folder = data or dataset.root
    if not folder:
        raise ValueError(
            f"profile {profile.name!r} trains on your labelled faces: give their folder (--data FOLDER; make pipeline PROFILE={profile.name} DATA=FOLDER)"
        )
    return resolve(folder)


def ensure_dataset(profile: Profile, source: Path, run_dir: Path, config: Path) -> Path:
    """The labelled tree the steps read: the synthetic set, generated first if the profile asks
    for it and it is absent; a folder of labelled faces laid out in the run, split by photograph
    (``prepare``, :func:`lib.data.prepare.prepare_labelled_folder`, with the validation share and
    split seed the profile's training uses); else ``source`` as it is."""
    dataset = profile.dataset
    if dataset.prepare:
        cfg = train_config("student", config, profile.name, {"data_root": str(source)})
        tree = prepare_labelled_folder(
            source, run_dir / PREPARED_FOLDER, cfg.scheme, dataset.test_fraction, dataset.seed, cfg.val_fraction, split_seed_of(vars(cfg))
        )
        write_headline(tree, PREPARED_FOLDER, *data_headline(json.loads((tree / PREPARED_FILE).read_text())))
        return tree
    if dataset.generate:
        dataset.render(source)
    elif not source.exists():
        raise FileNotFoundError(f"dataset root {source} does not exist (profile sets generate: false)")
    return source


RESOLVED_SETTINGS = "settings.json"  # in the run folder: resolved_settings()


def resolved_settings(profile: Profile, parameters_of: dict[str, dict]) -> dict:
    """What a run runs with, resolved: the profile's dataset and training sections (as
    pipeline.yaml gives them; each training also records its full ``config.json``) and every
    selected step's notebook parameters after all overrides."""
    return {"profile": profile.name, "dataset": dataclasses.asdict(profile.dataset), "train": profile.train, "steps": parameters_of}


def generate_dataset(pipeline: PipelineSpec, profile_name: str) -> Path:
    """The synthetic set of a profile that generates one, rendered now if absent (``make data``);
    ``ValueError`` for a profile whose data comes from elsewhere."""
    profile = pipeline.profile(profile_name)
    if profile.dataset.prepare or not profile.dataset.generate:
        raise ValueError(f"profile {profile_name!r} generates no synthetic set (its data: your labelled faces, or dataset.root as it is)")
    return profile.dataset.render(data_source(profile, None))


def new_run_dir(profile: str) -> Path:
    return resolve("runs") / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{profile}"


def _log(run_dir: Path, record: dict) -> None:
    with open(run_dir / "steps.jsonl", "a") as log:
        log.write(json.dumps(record) + "\n")


def write_summary(run_dir: Path, profile: str) -> Path:
    """``summary.md``: every step logged in this run folder, its time, its headline's summary line
    (:mod:`lib.headline`), its notebook and products."""
    records = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines() if line.strip()]
    lines = [
        f"# Run {run_dir.name} (profile `{profile}`)",
        "",
        "| step | status | seconds | headline | notebook | products |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for record in records:
        products = sorted(p.relative_to(run_dir).as_posix() for p in (run_dir / record["step"]).rglob("*") if p.is_file())
        links = ", ".join(f"[{p}]({p})" for p in products)
        headline = read_headline(run_dir / record["step"]) if record["status"] == "ok" else None
        summary = headline["summary"] if headline else ""
        lines.append(f"| {record['step']} | {record['status']} | {record['seconds']} | {summary} | [{record['notebook']}]({record['notebook']}) | {links} |")
    path = run_dir / "summary.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def parameter_defaults(notebook: Path) -> dict[str, object]:
    """Each parameter a notebook's ``parameters`` cell declares, with its default value (None
    where the default is not a Python literal, or is None)."""
    defaults = {}
    for name, info in papermill.inspect_notebook(str(notebook)).items():
        try:
            defaults[name] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            defaults[name] = None
    return defaults


def check_parameter_types(step: Step, parameters: dict, defaults: dict) -> None:
    """``TypeError`` naming the step and the parameter whose value is not of its default's type
    (an int where a float is the default is fine; a default of None takes anything), before any
    notebook runs: ``--set overlay_faces=abc`` stops here, not in a cell."""
    for name, value in parameters.items():
        default = defaults.get(name)
        if default is None:
            continue
        kind = type(default)
        fits = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        fits = fits or (kind is float and isinstance(value, int) and not isinstance(value, bool))
        if not fits:
            raise TypeError(
                f"step {step.name!r} ({step.notebook}): parameter {name} must be of type {kind.__name__}, as its default {default!r} is; got {value!r}"
            )


def refuse_other_settings(run_dir: Path, settings: dict) -> None:
    """A run folder continues only the run it holds: when its ``run.json`` records other
    ``settings`` (profile, overrides, pipeline file, dataset), ``ValueError`` names each key with
    both values, so two runs never mix in one folder's steps and summary."""
    recorded_path = run_dir / "run.json"
    if not recorded_path.is_file():
        return
    recorded = json.loads(recorded_path.read_text())
    changed = {key: (recorded.get(key), value) for key, value in settings.items() if key in recorded and recorded[key] != value}
    if changed:
        listed = "; ".join(f"{key}: {old!r} there, {new!r} now" for key, (old, new) in changed.items())
        raise ValueError(
            f"{run_dir} holds a run made with other settings ({listed}): give another --run-dir to start fresh, or the same settings to continue it"
        )


@contextmanager
def kernel_environment(values: dict[str, str]):
    """``values`` in the environment while a step's kernel starts and runs (it inherits them),
    the runner's own environment restored after."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# The kernel logs errors only: its start-up warning about TCP on the local machine is noise in every step's log.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]


def run_step(step: Step, parameters: dict, run_dir: Path) -> Path:
    """Execute one notebook; returns the executed copy's path."""
    output = run_dir / f"{Path(step.notebook).stem}.ipynb"
    try:
        with kernel_environment({progress.LINES: "lines"}):  # the kernel's progress as lines, not stored redraws
            papermill.execute_notebook(
                str(resolve(step.notebook)),
                str(output),
                parameters=parameters,
                cwd=str(PROJECT_ROOT),
                progress_bar=False,
                kernel_name="python3",
                extra_arguments=KERNEL_ARGUMENTS,
            )
    except PapermillExecutionError as error:
        raise StepFailed(
            f"step {step.name!r} ({step.notebook}) failed in cell {error.cell_index} (execution count {error.exec_count}): {error.ename}: {error.evalue}; executed notebook: {output}"
        ) from None
    return output


OPTIONAL = " (optional)"


SUBMISSIONS = "submissions/<run id>"  # a step's `submission_dir` parameter, when set, replaces it


def declared_path_pattern(entry: str, step_dir: Path, submission_dir: str | None = None) -> tuple[str, bool]:
    """A ``writes`` entry of ``pipeline.yaml`` as a glob pattern under the project, and whether
    it is required: ``run_dir`` is the step's folder, ``submissions/<run id>`` the step's
    ``submission_dir`` when one is given (else ``<run id>`` is the run's name), any other
    ``<placeholder>`` matches anything, and a trailing `` (optional)`` marks an output that
    depends on the step's parameters or data (not required)."""
    optional = entry.endswith(OPTIONAL)
    entry = entry.removesuffix(OPTIONAL)
    if submission_dir and entry.startswith(SUBMISSIONS):
        entry = str(resolve(submission_dir)) + entry[len(SUBMISSIONS) :]
    if entry.startswith("run_dir/"):
        entry = str(step_dir.relative_to(PROJECT_ROOT) if step_dir.is_relative_to(PROJECT_ROOT) else step_dir) + entry[len("run_dir") :]
    entry = entry.replace("<run id>", step_dir.parent.name)
    return re.sub(r"<[^>]+>", "*", entry).rstrip("/"), not optional


def missing_outputs(step: Step, step_dir: Path, parameters: dict | None = None) -> list[str]:
    """The required ``writes`` entries of ``step`` (run with ``parameters``) that nothing on disk
    matches."""
    missing = []
    for entry in step.writes:
        pattern, required = declared_path_pattern(entry, step_dir, (parameters or {}).get("submission_dir"))
        root = Path("/") if Path(pattern).is_absolute() else PROJECT_ROOT
        if required and not any(root.glob(pattern.lstrip("/"))):
            missing.append(entry)
    return missing


def run_pipeline(
    pipeline: PipelineSpec,
    profile_name: str,
    only: list[str] | None = None,
    start: str | None = None,
    overrides: dict | None = None,
    run_dir: str | Path | None = None,
    data: str | None = None,
) -> Path:
    """Run the selected steps of ``pipeline`` under a profile (``data``: the folder of labelled
    faces of a profile that takes one); returns the run folder."""
    profile = pipeline.profile(profile_name)
    steps = pipeline.select(only, start, profile.skip)
    source = data_source(profile, data)
    overrides = overrides or {}
    defaults = {step.name: parameter_defaults(resolve(step.notebook)) for step in steps}
    declared = {name: set(values) for name, values in defaults.items()}
    unused = set(overrides) - set().union(*declared.values())
    if unused:
        raise KeyError(f"no selected step declares parameters {sorted(unused)}")
    run_dir = resolve(run_dir) if run_dir else new_run_dir(profile_name)
    data_root = run_dir / PREPARED_FOLDER if profile.dataset.prepare else source
    parameters_of = {
        step.name: step_parameters(step, profile, declared[step.name], overrides, run_dir / step.name, pipeline.source, data_root) for step in steps
    }
    for step in steps:  # every step's values checked before anything is generated, written or run
        check_parameter_types(step, parameters_of[step.name], defaults[step.name])
    settings = {"profile": profile_name, "overrides": overrides, "config": str(pipeline.source), "dataset": str(source)}
    refuse_other_settings(run_dir, settings)
    run_dir.mkdir(parents=True, exist_ok=True)
    ensure_dataset(profile, source, run_dir, pipeline.source)
    context = run_context()
    atomic_write_text(run_dir / "run.json", json.dumps({**settings, "steps": [s.name for s in steps], **context}, indent=2))
    atomic_write_text(run_dir / RESOLVED_SETTINGS, json.dumps(resolved_settings(profile, parameters_of), indent=2, default=str))
    for index, step in enumerate(steps):
        step_dir = run_dir / step.name
        step_dir.mkdir(exist_ok=True)
        parameters = parameters_of[step.name]
        started = time.perf_counter()
        logged = {"step": step.name, "notebook": Path(step.notebook).name, "commit": context["commit"]}  # a run resumed --from a step may join commits
        print(f"[{index + 1}/{len(steps)}] {step.name}: {step.notebook}", flush=True)
        try:
            run_step(step, parameters, run_dir)
            missing = missing_outputs(step, step_dir, parameters)
            if missing:
                raise StepFailed(f"step {step.name!r} ({step.notebook}) finished without writing what pipeline.yaml declares: {', '.join(missing)}")
        except StepFailed:
            _log(run_dir, {**logged, "status": "failed", "seconds": round(time.perf_counter() - started, 1)})
            write_summary(run_dir, profile_name)
            write_report(run_dir)
            raise
        _log(run_dir, {**logged, "status": "ok", "seconds": round(time.perf_counter() - started, 1), "parameters": parameters})
    write_summary(run_dir, profile_name)
    write_report(run_dir)
    return run_dir
