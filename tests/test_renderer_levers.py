"""The renderer's levers: pixels only, their own random streams, recorded in the manifest, the
lever table's arithmetic, and each training run end to end as a package runs its file."""

import json
import zipfile

import cv2
import numpy as np
import pandas as pd
import pytest

from lib.bench.real_face_benchmark import benchmark
from lib.bench.renderer_levers import BASELINE, CROPS, END_TO_END, EVERY, arm_parts, end_to_end_scores, markdown
from lib.bench.renderer_levers import main as lever_command
from lib.data.real_faces import read_real_faces
from lib.data.synthetic.generate import generate, render_test, render_train
from lib.data.synthetic.levers import LEVERS, check_levers
from lib.deploy.run_model import BadInput, Pipeline
from lib.inference.landmarker import load_landmarker
from lib.inference.torch_model import TorchLandmarkModel
from lib.models.checkpoint import load_model
from lib.pipeline.runner import generate_dataset
from lib.schemes import load_scheme
from lib.settings import load_pipeline
from lib.submission.score import MISSED_NME
from lib.training.ablation import seed_summary
from tests.conftest import write_300w_tree


def _pixels(jpeg: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).astype(np.int16)


@pytest.mark.parametrize("lever", LEVERS)
def test_a_lever_changes_pixels_only_and_no_other_draw(lever):
    changed = []
    for index in range(6):
        subset, plain, points, conditions = render_train(3, index, 50)
        subset_on, with_lever, points_on, conditions_on = render_train(3, index, 50, (lever,))
        assert subset_on == subset
        np.testing.assert_array_equal(points_on, points)  # the same face, pose and expression
        assert conditions_on == conditions
        changed.append((np.abs(_pixels(with_lever) - _pixels(plain)).max(axis=2) > 4).mean())
        np.testing.assert_array_equal(_pixels(render_train(3, index, 50, (lever,))[1]), _pixels(with_lever))  # its own stream: deterministic
    assert max(changed) > 0.02  # the lever drew something (2 % of the pixels or more; some levers act on some images only)


def test_levers_leave_a_scene_with_several_faces_its_faces():
    plain = render_test(5, 0, "test")
    every = render_test(5, 0, "test", LEVERS)
    assert len(every[1]) == len(plain[1]) >= 1
    for (points, _), (points_on, _) in zip(plain[1], every[1], strict=True):
        np.testing.assert_array_equal(points_on, points)


def test_the_manifest_records_levers_and_a_set_without_them_keeps_its_identity(tmp_path):
    plain = generate(tmp_path / "plain", 2, 1, seed=3)
    assert "levers" not in json.loads((plain / "manifest.json").read_text())["params"]  # sets made before the levers keep their identity
    with_levers = generate(tmp_path / "levers", 2, 1, seed=3, levers=["skin", "camera", "skin"])
    assert json.loads((with_levers / "manifest.json").read_text())["params"]["levers"] == ["camera", "skin"]
    with pytest.raises(ValueError, match="unknown renderer lever.*'wig'.*the levers are"):
        generate(tmp_path / "bad", 2, 1, seed=3, levers=["wig"])
    assert not (tmp_path / "bad").exists()
    assert not (tmp_path / "bad.partial").exists()


def test_a_profile_names_its_levers_make_data_renders_them_and_an_unknown_one_is_refused(tmp_path):
    text = f"""
steps: [{{name: eda, notebook: notebooks/00_eda.ipynb}}]
profiles:
  mine: {{dataset: {{root: {tmp_path / "set"}, train: 2, test: 1, levers: [scene, hair]}}}}
  own: {{dataset: {{prepare: true, generate: false}}}}
"""
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    pipeline = load_pipeline(path)
    assert pipeline.profiles["mine"].dataset.levers == ("hair", "scene")
    rendered = generate_dataset(pipeline, "mine")  # make data
    assert json.loads((rendered / "manifest.json").read_text())["params"]["levers"] == ["hair", "scene"]
    with pytest.raises(ValueError, match="'own' generates no synthetic set"):
        generate_dataset(pipeline, "own")
    path.write_text(text.replace("hair]", "hat]"))
    with pytest.raises(ValueError, match="'hat'"):
        load_pipeline(path)


def test_arms_name_their_levers():
    assert arm_parts(BASELINE) == (BASELINE, (), {})
    assert arm_parts(EVERY) == (EVERY, LEVERS, {})
    assert arm_parts("skin+scene") == ("skin+scene", check_levers(["scene", "skin"]), {}) == ("skin+scene", ("scene", "skin"), {})
    assert arm_parts("randconv") == (BASELINE, (), {"augment": {"randconv_p": 0.5}})  # the training lever trains on the plain set
    assert arm_parts("skin+randconv") == ("skin", ("skin",), {"augment": {"randconv_p": 0.5}})
    with pytest.raises(ValueError, match="'glasses'"):
        arm_parts("glasses")


def test_the_lever_table_pairs_each_arm_with_the_baseline_by_seed():
    # On every seed `scene` is exactly 0.5 points better than `none`, `hair` 0.2, 0.4, 0.6 worse.
    none = [0.080, 0.070, 0.075]
    rows = [{"model": BASELINE, "seed": s, "nme": v} for s, v in zip((1, 2, 3), none, strict=True)]
    rows += [{"model": "scene", "seed": s, "nme": v - 0.005} for s, v in zip((1, 2, 3), none, strict=True)]
    rows += [{"model": "hair", "seed": s, "nme": v + d} for s, v, d in zip((1, 2, 3), none, (0.002, 0.004, 0.006), strict=True)]
    summary = seed_summary(pd.DataFrame(rows), baseline=BASELINE).set_index("model")
    assert summary.loc["scene", "nme_minus_baseline"] == pytest.approx(-0.005)
    assert summary.loc["scene", ["ci95_low", "ci95_high"]].tolist() == pytest.approx([-0.005, -0.005])  # no spread
    assert summary.loc["scene", "better_share"] == 1.0
    # hair: mean +0.004, sd 0.002 over 3 seeds: half-width t(0.975, 2) * 0.002 / sqrt(3) = 4.303 * 0.0011547
    assert summary.loc["hair", ["ci95_low", "ci95_high"]].tolist() == pytest.approx([0.004 - 0.0049683, 0.004 + 0.0049683], abs=1e-6)
    end_to_end = summary.reset_index().assign(measure=END_TO_END, nme_mean=summary["nme_mean"].to_numpy() + 0.01)
    table = markdown(pd.concat([summary.reset_index().assign(measure=CROPS), end_to_end]), "/x/300w", 1207, 3000)
    crops, _, ends = table.partition(f"## {END_TO_END}")
    assert f"## {CROPS}" in crops
    assert "| scene | 3 | 7.00 % +- 0.50 | -0.50 | -0.50 to -0.50 | 3 of 3 |" in crops
    assert "| hair | 3 | 7.90 % +- 0.44 | +0.40 | -0.10 to +0.90 | 0 of 3 |" in crops
    assert "| scene | 3 | 8.00 % +- 0.50 | -0.50 | -0.50 to -0.50 | 3 of 3 |" in ends  # each measure its own table


def test_the_lever_command_names_bad_input_and_exits_2_before_rendering(tmp_path, capsys):
    assert lever_command(["--real", str(tmp_path / "absent"), "--out", str(tmp_path / "out")]) == 2
    assert "absent: real-face folder not found" in capsys.readouterr().err
    assert lever_command(["--real", str(tmp_path), "--arms", "wig", "--out", str(tmp_path / "out")]) == 2
    assert "unknown renderer lever(s) ['wig']" in capsys.readouterr().err
    assert lever_command(["--real", str(tmp_path), "--package", str(tmp_path / "gone.zip"), "--out", str(tmp_path / "out")]) == 2
    assert "gone.zip: package not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_end_to_end_scores_run_each_network_as_the_package_runs_its_own_file(tmp_path, synthetic_root, smoke_run):
    run_dir, submitted, finished = smoke_run
    assert finished.returncode == 0, finished.stderr[-3000:]
    scheme = load_scheme("ivslab51")
    real = read_real_faces(write_300w_tree(synthetic_root, tmp_path / "300w"), "ivslab51")
    package = submitted / "final_package.zip"
    trainings = [("student + KD", 0, run_dir / "student"), ("student alone", 0, run_dir / "student" / "student_alone")]
    scores = end_to_end_scores(trainings, real, scheme, package)
    assert scores[["model", "seed", "faces"]].values.tolist() == [["student + KD", 0, len(real)], ["student alone", 0, len(real)]]
    # Computed another way: the package's own pipeline (its detector and settings) with the
    # training's network put in place of the package's file.
    shipped = load_landmarker(package)
    for (label, _, folder), row in zip(trainings, scores.itertuples(), strict=True):
        model = TorchLandmarkModel(load_model(folder / "best.pt"), flip=shipped.flip)
        swapped = Pipeline(
            model,
            shipped.detector,
            shipped.calibration,
            shipped.max_faces,
            shipped.refine_passes,
            shipped.level_eyes,
            shipped.detector_roll,
            shipped.refine_beyond,
        )
        expected = benchmark({label: swapped}, real, scheme)[0].iloc[0]
        assert row.nme == pytest.approx(expected["nme_outer_eye_corners"])
        assert row.missed == expected["missed"] < len(real)
    # The package's settings rule: a detector threshold no face passes leaves every face missed.
    folder = tmp_path / "package"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(folder)
    settings = json.loads((folder / "settings.json").read_text())
    (folder / "settings.json").write_text(json.dumps({**settings, "min_score": 1.0}))
    blind = end_to_end_scores(trainings[:1], real, scheme, folder).iloc[0]
    assert (blind["missed"], blind["fr@0.10"], blind["nme"]) == (len(real), 1.0, MISSED_NME)  # each missed face in the mean at its cap
    with pytest.raises(BadInput, match="not a package"):
        end_to_end_scores(trainings[:1], real, scheme, tmp_path / "300w")
