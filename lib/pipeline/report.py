"""A run's report, ``runs/<id>/report.md``, built from the headline each step wrote
(:mod:`lib.headline`) and nothing else: the headline table (the shipped file against MediaPipe,
the networks on the synthetic test over seeds, the submission end to end, real faces beside the
peers), then the run's command, commit, machine, the time and summary line of each step, and
links to its figures. ``report.json`` beside it holds the
same numbers (aggregates only: no image, face or per-face row).

    python -m lib.pipeline.report runs/<id> [--publish docs/results] [--readme README.md]

``--publish`` copies the report, its numbers and its small figures to ``<folder>/<id>/`` (what a
repository may keep); ``--readme`` rewrites the README's block of that run (between
``<!-- headline <id>: start -->`` and ``<!-- headline <id>: end -->``) from the published numbers,
so the README quotes exactly what a run wrote.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from lib.data.prepare import PREPARED_FOLDER
from lib.headline import HEADLINE_FILE, percent, plain, read_headline
from lib.io import atomic_write_text
from lib.paths import PROJECT_ROOT

FIGURES = ("timing/pareto.png", "student/curves.png", "submission/ced.png", "video/video_trace.png")  # small plots a published report links
PER_FACE_FIGURES = ("submission/ced.png",)  # drawn from every face's error: left out where the faces are the user's own


def run_context() -> dict:
    """Where and from what a run is made: ``command``, ``commit`` (with ``+changes`` when the
    work tree differs from it; None outside a git checkout), ``machine`` (CPU model, cores, Python,
    torch) and ``started`` (local time): what ``run.json`` records at the start of a run."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        commit = head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "") if head.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        commit = None
    cpu = next((line.split(":", 1)[1].strip() for line in _read_lines("/proc/cpuinfo") if line.startswith("model name")), platform.processor() or "?")
    program = Path(sys.argv[0])
    if program.name == "__main__.py" and program.parent.is_relative_to(PROJECT_ROOT):
        program = Path("python -m " + ".".join(program.parent.relative_to(PROJECT_ROOT).parts))
    return {
        "command": " ".join([program.name if program.is_absolute() else str(program), *sys.argv[1:]]),
        "commit": commit,
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": _version("torch")},
        "started": datetime.now().isoformat(timespec="seconds"),
    }


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect(run_dir: str | Path) -> dict:
    """The report's numbers from a run folder: ``run.json`` (command, commit, machine), the time
    of each step (``steps.jsonl``) and each step's headline (:mod:`lib.headline`: its numbers,
    merged, and its summary line under ``summaries``), the data preparation's first where the run
    prepared the user's faces; a step without a headline is left out. NME values are fractions."""
    run_dir = Path(run_dir)
    run_record = run_dir / "run.json"
    record: dict = {"run": run_dir.name, **(json.loads(run_record.read_text()) if run_record.is_file() else {})}
    steps = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines() if line.strip()] if (run_dir / "steps.jsonl").is_file() else []
    record["steps"] = {step["step"]: step["seconds"] for step in steps if step["status"] == "ok"}
    record["step_commits"] = {step["step"]: step.get("commit") for step in steps if step["status"] == "ok"}
    record["summaries"] = {}
    for step in [PREPARED_FOLDER, *record["steps"]]:
        headline = read_headline(run_dir / step)
        if headline is None:
            continue
        clash = sorted(set(headline["numbers"]) & set(record))
        if clash:
            raise ValueError(f"{run_dir / step / HEADLINE_FILE}: {clash} already come from another step")
        record.update(headline["numbers"])
        record["summaries"][step] = headline["summary"]
    return plain(record)


def _pct(value: float | None, digits: int = 2) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else percent(value, digits)


def _kd_row(rows: list[dict], model: str = "student + KD") -> dict | None:
    return next((row for row in rows if row["model"] == model), None)


def _interval(row: dict) -> str:
    """`` (low to high)`` in points of a row's 95 % interval, empty where it has none (one seed)."""
    if row.get("ci95_low") is None:
        return ""
    return f" ({100 * row['ci95_low']:+.2f} to {100 * row['ci95_high']:+.2f})"


def headline_markdown(record: dict) -> str:
    """The headline table of a :func:`collect` record: what the README quotes. The test faces are
    the synthetic test, or in a run of the user's own faces the test part it held out."""
    test = "synthetic test"
    lines = ["| measured | value |", "| --- | --- |"]
    data = record.get("data")
    if data:
        test = "test part"
        parts = data["parts"]
        lines.append(
            f"| data: `{data['folder']}` ({data['kind']}), split by photograph | train {parts['train']['faces']}, validation {parts['val']['faces']}, "
            f"test part {parts['test']['faces']} faces ({parts['test']['photos']} photographs) |"
        )
    shipped = record.get("shipped")
    if shipped:
        ratio = shipped["latency_ratio"]
        lines.append(
            f"| shipped file (`{shipped['file']}`) | {shipped['size_mb']:.2f} MB, {shipped['gflops']:.3f} GFLOPs, "
            f"{shipped[shipped['latency_column']]:.2f} ms on one thread = **{ratio:.2f}x MediaPipe's landmark model** ({shipped['mediapipe_ms']:.2f} ms, same run) |"
        )
    refinement = record.get("refinement") or {}
    if shipped and refinement.get("runs_per_face") is not None:
        runs, passes = refinement["runs_per_face"], refinement["passes"]
        faces = "every face" if refinement.get("refine_beyond") is None else f"the faces beyond {refinement['refine_beyond']:.3f} crop sides"
        lines.append(
            f"| the package per face (chosen on the detector set: {passes} refinement passes for {faces}, flip {'on' if refinement['flip'] else 'off'}) | "
            f"{runs:.2f} network runs a face there = **{runs * shipped['latency_ratio']:.2f}x MediaPipe's landmark model** on average, "
            f"{refinement['most_runs']} at most |"
        )
    if "teacher_nme" in record:
        lines.append(f"| teacher, {test} (crops from the labels, eye centroids) | {_pct(record['teacher_nme'])} |")
    students = record.get("students") or []
    for row in students:
        if row["model"] in ("student alone", "student + KD"):
            spread = f" +- {_pct(row['nme_std'])}" if row.get("nme_std") is not None else ""
            lines.append(f"| {row['model']}, {test}, {row['seeds']} seeds | {_pct(row['nme_mean'])}{spread} |")
    kd = _kd_row(students)
    if kd and kd.get("nme_minus_baseline") is not None:
        lines.append(
            f"| KD minus alone, {test} (paired, 95 % interval) | **{100 * kd['nme_minus_baseline']:+.2f} points**{_interval(kd)}, "
            f"better on {round(kd['better_share'] * kd['paired_seeds'])} of {int(kd['paired_seeds'])} seeds |"
        )
    pretraining = record.get("pretraining")
    if pretraining:
        lines.append(
            f"| pretrained minus from scratch, KD student, {test} ({pretraining['faces']} faces, one seed, 95 % interval over faces) | "
            f"**{100 * pretraining['difference']:+.2f} points**{_interval(pretraining)} ({_pct(pretraining['nme'])} against {_pct(pretraining['nme_baseline'])}) |"
        )
    submission = record.get("submission")
    if submission:
        lines.append(
            f"| the package end to end on the {test} ({submission['faces']} faces, every face counted) | NME {_pct(submission['nme'])}, "
            f"median {_pct(submission['median'])}, FR@0.10 {_pct(submission['fr'], 1)}, {submission['missed']} missed |"
        )
    for row in record.get("real_faces") or []:
        missed = f", {row['missed']} missed" if row["missed"] else ""
        lines.append(
            f"| real faces, {row['set']} ({row['faces']}): {row['method']} | mean {_pct(row['nme_outer_eye_corners'])}, median {_pct(row.get('median_outer_eye_corners'))}, "
            f"matched faces {_pct(row.get('nme_matched_outer_eye_corners'))}, FR@0.10 {_pct(row['fr_outer_eye_corners'], 1)}{missed} |"
        )
    for row in record.get("real_faces_seeds") or []:
        if row["model"] == "student + KD" and row.get("nme_minus_baseline") is not None:
            lines.append(
                f"| KD minus alone, real faces: {row['set']} (networks on crops from the labels) | {100 * row['nme_minus_baseline']:+.2f} points{_interval(row)} |"
            )
    return "\n".join(lines) + "\n"


def report_markdown(record: dict, figures: list[str]) -> str:
    """The whole report: the headline, the runner-up, the run's provenance and step times, figures."""
    machine = record.get("machine", {})
    lines = [f"# Run {record['run']} (profile `{record.get('profile', '?')}`)", "", headline_markdown(record)]
    if record.get("runner_up"):
        runner = record["runner_up"]
        lines += [f"Runner-up by the ship rule: `{runner['file']}`, validation NME {_pct(runner['nme'])}, {runner['latency_ratio']:.2f}x MediaPipe.", ""]
    if record.get("refinement"):
        chosen = record["refinement"]
        roll = "on" if chosen.get("detector_roll") else "off"
        faces = "every face" if chosen.get("refine_beyond") is None else f"the faces beyond {chosen['refine_beyond']:.3f} crop sides"
        runs = f", {chosen['runs_per_face']:.2f} network runs a face there" if chosen.get("runs_per_face") is not None else ""
        lines += [
            f"Refinement chosen on the detector set: {chosen['passes']} passes for {faces}, flip {'on' if chosen['flip'] else 'off'}, the detector's roll {roll}{runs}.",
            "",
        ]
    steps, commits = record.get("steps", {}), record.get("step_commits", {})
    mixed = len({commit for commit in commits.values() if commit}) > 1  # steps run again from a later commit (--from)
    lines += [
        "## How it was made",
        "",
        f"- command: `{record.get('command', '?')}`" + (" (the last; each step's commit is in its row)" if mixed else ""),
        f"- commit: `{record.get('commit', '?')}`",
        f"- machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, Python {machine.get('python', '?')}, torch {machine.get('torch', '?')}",
        f"- started: {record.get('started', '?')}",
        "",
        "| step | seconds | headline |" + (" commit |" if mixed else ""),
        "| --- | --- | --- |" + (" --- |" if mixed else ""),
        *[
            f"| {step} | {seconds} | {record.get('summaries', {}).get(step, '')} |" + (f" `{commits.get(step) or '?'}` |" if mixed else "")
            for step, seconds in steps.items()
        ],
        f"| **all** | {round(sum(steps.values()), 1)} | |" + (" |" if mixed else ""),
        "",
    ]
    lines += [f"![{figure}]({figure})" for figure in figures]
    return "\n".join(lines) + "\n"


def report_figures(run_dir: Path, record: dict) -> list[str]:
    """The :data:`FIGURES` a run made, less :data:`PER_FACE_FIGURES` when it ran on the user's
    own faces (a report of them holds aggregates only)."""
    return [figure for figure in FIGURES if (run_dir / figure).is_file() and not (record.get("data") and figure in PER_FACE_FIGURES)]


def write_report(run_dir: str | Path) -> Path:
    """``run_dir/report.md`` and ``report.json`` (:func:`collect`), written atomically."""
    run_dir = Path(run_dir)
    record = collect(run_dir)
    atomic_write_text(run_dir / "report.json", json.dumps(record, indent=2) + "\n")
    atomic_write_text(run_dir / "report.md", report_markdown(record, report_figures(run_dir, record)))
    return run_dir / "report.md"


def publish(run_dir: str | Path, folder: str | Path) -> Path:
    """Copy a run's report, its numbers and its :func:`report_figures` into ``folder/<run id>/``."""
    run_dir = Path(run_dir)
    write_report(run_dir)
    out = Path(folder) / run_dir.name
    for name in ("report.md", "report.json", *report_figures(run_dir, collect(run_dir))):
        if (run_dir / name).is_file():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run_dir / name, out / name)
    return out


def headline_markers(run: str) -> tuple[str, str]:
    """The comments around a run's headline block in the README."""
    return f"<!-- headline {run}: start -->", f"<!-- headline {run}: end -->"


def replace_headline(readme_text: str, record: dict) -> str:
    """``readme_text`` with the block between the record's run's :func:`headline_markers`
    replaced by its headline (``ValueError`` when the markers are missing)."""
    start_marker, end_marker = headline_markers(record["run"])
    start, end = readme_text.find(start_marker), readme_text.find(end_marker)
    if start < 0 or end < start:
        raise ValueError(f"no {start_marker} ... {end_marker} block to replace")
    return readme_text[: start + len(start_marker)] + "\n" + headline_markdown(record) + readme_text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.pipeline.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--publish", type=Path, help="copy the report, its numbers and figures to FOLDER/<run id>/")
    parser.add_argument("--readme", type=Path, help="rewrite this file's headline block from the report's numbers")
    args = parser.parse_args(argv)
    if not (args.run_dir / "steps.jsonl").is_file():
        print(f"{args.run_dir}: not a run folder (no steps.jsonl)", file=sys.stderr)
        return 2
    path = publish(args.run_dir, args.publish) / "report.md" if args.publish else write_report(args.run_dir)
    print(path)
    if args.readme:
        record = json.loads((path.parent / "report.json").read_text())
        atomic_write_text(args.readme, replace_headline(args.readme.read_text(), record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
