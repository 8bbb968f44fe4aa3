"""Reading a run's logs back for notebooks: metric curves, the distillation ablation table and
its summary over seeds."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from lib.data.dataset import LandmarkDataset
from lib.data.sources import source_test_tables
from lib.data.splits import split_seed_of, training_split
from lib.formats.table import points_array
from lib.headline import percent
from lib.metrics import nme
from lib.models.checkpoint import load_model
from lib.models.complexity import count_flops, count_parameters
from lib.schemes import load_scheme
from lib.training.config import TrainConfig, distils
from lib.training.engine import read_log_records
from lib.training.evaluate import predict
from lib.training.jobs import ALONE, DISTILLED, SCRATCH, pruned_name
from lib.viz.overlay import overlay_grid


def read_metrics(out_dir: str | Path) -> pd.DataFrame:
    """``metrics.jsonl`` as one row per epoch: ``epoch``, ``lr``, ``train_<term>``, ``val_nme``,
    ``val_fr``, ``val_auc``, ``seconds``, ``images_per_second``."""
    rows = []
    for record in read_log_records(Path(out_dir) / "metrics.jsonl"):
        row = {"epoch": record["epoch"], "lr": record["lr"], "seconds": record["seconds"], "images_per_second": record["images_per_second"]}
        row.update({f"train_{k}": v for k, v in record["train"].items()})
        row.update({f"val_{k}": record["val"][k] for k in ("nme", "fr", "auc")})
        rows.append(row)
    return pd.DataFrame(rows)


def plot_curves(runs: dict[str, pd.DataFrame]) -> Figure:
    """Training loss terms (one panel per term) and validation NME per epoch for labelled runs."""
    terms = sorted({c for frame in runs.values() for c in frame.columns if c.startswith("train_")})
    figure, axes = plt.subplots(1, len(terms) + 1, figsize=(3.2 * (len(terms) + 1), 3), squeeze=False)
    for label, frame in runs.items():
        for ax, term in zip(axes[0], terms, strict=False):
            if term in frame:
                ax.plot(frame["epoch"], frame[term], marker="o", label=label)
            ax.set_title(term.removeprefix("train_"))
        axes[0, -1].plot(frame["epoch"], frame["val_nme"], marker="o", label=label)
    axes[0, -1].set_title("validation NME")
    axes[0, -1].legend(fontsize=7)
    for ax in axes[0]:
        ax.set_xlabel("epoch")
    figure.tight_layout()
    return figure


def ablation_table(runs: Iterable[tuple[str, str | Path]]) -> pd.DataFrame:
    """One row per (label, training folder) pair, a label repeating over seeds: the folder's
    training seed, and test (else validation) NME, FR@0.10, AUC@0.10 of its best checkpoint, with
    params (M) and GFLOPs at its input size."""
    rows = []
    for label, out_dir in runs:
        results = json.loads((Path(out_dir) / "results.json").read_text())
        split = "test" if "test" in results else "val"
        model = load_model(Path(out_dir) / "best.pt")
        rows.append(
            {
                "model": label,
                "seed": json.loads((Path(out_dir) / "config.json").read_text())["seed"],
                "split": split,
                "nme": results[split]["nme"],
                "fr@0.10": results[split]["fr"],
                "auc@0.10": results[split]["auc"],
                "params_m": count_parameters(model) / 1e6,
                "gflops": count_flops(model, model.input_size) / 1e9,
                "input_size": model.input_size,
            }
        )
    return pd.DataFrame(rows)


def validation_overlays(out_dir: str | Path, cfg: TrainConfig, faces: int = 6) -> Figure:
    """The ``faces`` worst validation faces of ``out_dir/best.pt`` (first row) and its ``faces``
    best (second row): predictions in part colours, ground truth as crosses."""
    scheme = load_scheme(cfg.scheme)
    model = load_model(Path(out_dir) / "best.pt")
    validation = training_split(cfg.data_sources, cfg.scheme, cfg.val_fraction, split_seed_of(vars(cfg)), cfg.skip_bad_faces)[1]
    dataset = LandmarkDataset(validation, scheme, model.input_size)
    predicted = predict(model, dataset, batch_size=cfg.batch_size)
    errors = nme(predicted, points_array(dataset.table), scheme)
    order = np.argsort(errors)[::-1]
    rows = [int(r) for r in (*order[:faces], *order[::-1][:faces])]
    return overlay_grid(dataset.table, scheme, rows, columns=faces, titles=[f"NME {errors[r]:.3f}" for r in rows], predictions=predicted[rows])


def paired_interval(differences: pd.Series, level: float = 0.95) -> tuple[float, float]:
    """Two-sided ``level`` confidence interval of the mean of paired differences (Student's t
    with n - 1 degrees of freedom); NaN for fewer than two pairs."""
    n = len(differences)
    if n < 2:
        return float("nan"), float("nan")
    half_width = stats.t.ppf(0.5 + level / 2, n - 1) * differences.std(ddof=1) / np.sqrt(n)
    return float(differences.mean() - half_width), float(differences.mean() + half_width)


def paired_test_difference(model_dir: str | Path, baseline_dir: str | Path) -> dict:
    """Two trainings of one step on the same test faces (their first test set, whose predictions
    each saved): ``faces``, each one's NME (its source's normaliser), the mean per-face
    difference model - baseline (negative: the model is better) and its 95 % interval (paired t
    over the faces: one seed pair, so it holds the faces' spread, not the seeds')."""
    config = TrainConfig(**{key: value for key, value in json.loads((Path(model_dir) / "config.json").read_text()).items()})
    source, table = next((source, table) for source in config.data_sources for table in source_test_tables(source, config.scheme).values())
    truth = points_array(table)
    scheme = load_scheme(config.scheme)
    errors = [nme(np.load(Path(folder) / "test_predictions.npy"), truth, scheme, source.normaliser) for folder in (model_dir, baseline_dir)]
    differences = pd.Series(errors[0] - errors[1])
    low, high = paired_interval(differences)
    return {
        "faces": len(differences),
        "nme": errors[0].mean(),
        "nme_baseline": errors[1].mean(),
        "difference": differences.mean(),
        "ci95_low": low,
        "ci95_high": high,
    }


def step_trainings(student_dir: str | Path) -> list[tuple[str, int, Path]]:
    """Every finished training of a student step (``student_dir`` and the folders below it with a
    ``best.pt``) as (label, seed, folder), read back from each folder's ``config.json``: a run
    with a ``prune_ratio`` is a pruned student (:func:`lib.training.jobs.pruned_name`); in a step
    that starts from pretrained weights, a run that does not is :data:`SCRATCH`; else
    :data:`DISTILLED` when it distils, else :data:`ALONE`; one trained at another input size than
    the step's own is labelled so (``student + KD at 96 px``). Sorted by seed, then alone, with
    KD, the others by name."""
    found = []
    step = json.loads((Path(student_dir) / "config.json").read_text())
    for best in Path(student_dir).rglob("best.pt"):
        config = json.loads((best.parent / "config.json").read_text())
        if "prune_ratio" in config["model"]:
            label = pruned_name(config["model"]["prune_ratio"] or 0.0)
        elif step.get("init_from") and not config.get("init_from"):
            label = SCRATCH
        else:
            label = DISTILLED if distils(config["loss"]) else ALONE
        if config["input_size"] != step["input_size"]:
            label = f"{label} at {config['input_size']} px"  # lib.training.jobs.size_jobs
        found.append((label, config["seed"], best.parent))
    order = {ALONE: 0, DISTILLED: 1}
    return sorted(found, key=lambda item: (item[1], order.get(item[0], 2), item[0]))


def seed_summary(table: pd.DataFrame, baseline: str = ALONE) -> pd.DataFrame:
    """Per model of an :func:`ablation_table` with several seeds: the number of seeds, mean and
    sample standard deviation of NME, and, against ``baseline`` on the seeds both have, the mean
    paired NME difference (negative: better than the baseline) with its 95 % interval (paired t,
    :func:`paired_interval`) and the share of seeds where the model is better. Single-seed
    differences mean little when the seeds' spread is as large."""
    per_seed = table.pivot_table(index="seed", columns="model", values="nme", aggfunc="first")
    rows = []
    for name in dict.fromkeys(table["model"]):
        nmes = per_seed[name].dropna()
        row = {"model": name, "seeds": len(nmes), "nme_mean": nmes.mean(), "nme_std": nmes.std(ddof=1)}  # NaN for one seed
        if name != baseline and baseline in per_seed:
            paired = (per_seed[name] - per_seed[baseline]).dropna()
            low, high = paired_interval(paired)
            row.update(
                {"paired_seeds": len(paired), "nme_minus_baseline": paired.mean(), "ci95_low": low, "ci95_high": high, "better_share": (paired < 0).mean()}
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _points(value: float) -> str:
    return f"{100 * value:+.2f}"


def training_headline(results: dict) -> tuple[str, dict]:
    """A training step's headline (:mod:`lib.headline`) from its ``results.json`` record: the
    best validation NME and the first test set's, epochs run."""
    test = next(iter(results.get("tests", {}).values()), None)
    numbers = {"epochs": results["completed_epochs"], "val_nme": results["best_val_nme"], "test_nme": test["nme"] if test else None}
    line = f"{results['completed_epochs']} epochs, validation NME {percent(results['best_val_nme'])}" + (f", test NME {percent(test['nme'])}" if test else "")
    return line, {results["stage"]: numbers}


def student_headline(table: pd.DataFrame, over_seeds: pd.DataFrame, pretraining: dict | None = None) -> tuple[str, dict]:
    """The student step's headline (:mod:`lib.headline`): the teacher's test NME (``teacher_nme``),
    each model's :func:`seed_summary` row (``students``) and, when the students were pretrained,
    the :func:`paired_test_difference` against training from scratch (``pretraining``)."""
    numbers: dict = {"students": over_seeds.to_dict(orient="records")}
    teacher = table.loc[table["model"] == "teacher", "nme"]
    if len(teacher):
        numbers["teacher_nme"] = float(teacher.iloc[0])
    if pretraining is not None:
        numbers["pretraining"] = pretraining
    kd = over_seeds[over_seeds["model"] == DISTILLED]
    line = "no KD student"
    if len(kd):
        row = kd.iloc[0]
        line = f"KD student {percent(row['nme_mean'])} over {int(row['seeds'])} seeds"
        if pd.notna(row.get("nme_std")):
            line += f" (sd {100 * row['nme_std']:.2f} points)"
        if pd.notna(row.get("nme_minus_baseline")):
            interval = f" ({_points(row['ci95_low'])} to {_points(row['ci95_high'])})" if pd.notna(row.get("ci95_low")) else ""
            line += f"; KD minus alone {_points(row['nme_minus_baseline'])} points{interval}"
    return line, numbers
