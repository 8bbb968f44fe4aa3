"""Metrics against values computed by hand."""

import numpy as np
import pandas as pd
import pytest

from lib.metrics import auc, ced_curve, failure_rate, nme, nme_by_condition, normalising_distance, per_part_nme, summarise
from lib.schemes import load_scheme

SCHEME = load_scheme("ivslab51")


def face_with_eyes(right_centre, left_centre):
    """A 51-point face whose eye rings are unit hexagons around the given centres."""
    points = np.zeros((51, 2))
    ring = np.column_stack([np.cos(np.arange(6) * np.pi / 3), np.sin(np.arange(6) * np.pi / 3)])
    points[19:25] = np.asarray(right_centre) + ring
    points[25:31] = np.asarray(left_centre) + ring
    return points


def test_normalisers_by_hand():
    gt = face_with_eyes([10, 20], [50, 50])[None]
    assert normalising_distance(gt, SCHEME)[0] == pytest.approx(50.0)  # 3-4-5 triangle x 10
    # Outer corners: 19 is right centre + (1, 0); 28 is left centre + ring[3] = (-1, 0).
    assert normalising_distance(gt, SCHEME, "outer_eye_corners")[0] == pytest.approx(np.hypot(38, 30))
    extent = gt[0].max(axis=0) - gt[0].min(axis=0)
    assert normalising_distance(gt, SCHEME, "box")[0] == pytest.approx(np.sqrt(extent[0] * extent[1]))


def test_nme_by_hand():
    gt = np.stack([face_with_eyes([0, 0], [100, 0]), face_with_eyes([0, 0], [0, 40])])
    pred = gt.copy()
    pred[0, :, 0] += 5  # every point 5 px off on a 100 px face -> 0.05
    pred[1, :10] += [3, 4]  # 10 of 51 points 5 px off on a 40 px face -> 10 * 5 / 40 / 51
    np.testing.assert_allclose(nme(pred, gt, SCHEME), [0.05, 10 * 5 / 40 / 51])
    parts = per_part_nme(pred, gt, SCHEME)
    assert parts["right_eyebrow"] == pytest.approx((0.05 + 5 / 40) / 2)
    assert parts["inner_lip"] == pytest.approx(0.05 / 2)


def test_failure_rate_auc_and_ced_by_hand():
    errors = np.array([0.02, 0.04, 0.08, 0.12])
    assert failure_rate(errors, 0.10) == 0.25
    assert failure_rate(errors, 0.05) == 0.5
    # Exact area of the step CED on [0, 0.1]: mean(max(0.1 - e, 0)) / 0.1.
    exact = np.mean([0.08, 0.06, 0.02, 0.0]) / 0.1
    assert auc(errors, 0.10, "exact") == pytest.approx(exact)
    assert auc(errors, 0.10, "trapezoid", steps=20001) == pytest.approx(exact, abs=1e-4)
    assert auc(errors, 0.10, "simpson", steps=20001) == pytest.approx(exact, abs=1e-4)
    levels, shares = ced_curve(errors, 0.10, steps=11)
    np.testing.assert_allclose(levels, np.linspace(0, 0.1, 11))
    np.testing.assert_allclose(shares, [0, 0, 0.25, 0.25, 0.5, 0.5, 0.5, 0.5, 0.75, 0.75, 0.75])
    assert auc(np.zeros(3), 0.1, "exact") == pytest.approx(1.0)
    assert auc(np.ones(3), 0.1) == 0.0
    with pytest.raises(ValueError, match="unknown AUC method"):
        auc(errors, 0.1, "nope")


def test_by_condition_and_summary():
    errors = np.array([0.02, 0.04, 0.08, 0.12])
    conditions = pd.DataFrame({"pose": [0, 0, 1, 1], "blur": [1, 0, 0, 0]})
    table = nme_by_condition(errors, conditions, ["pose", "blur"])
    pose1 = table[(table.condition == "pose") & (table.value == 1)].iloc[0]
    assert pose1.faces == 2
    assert pose1.nme == pytest.approx(0.10)
    assert pose1.fr == 0.5
    blur1 = table[(table.condition == "blur") & (table.value == 1)].iloc[0]
    assert blur1.nme == pytest.approx(0.02)
    gt = np.stack([face_with_eyes([0, 0], [100, 0])] * 2)
    report = summarise(gt + [1.0, 0.0], gt, SCHEME)
    assert report["nme"] == pytest.approx(0.01)
    assert report["fr"] == 0
    assert report["faces"] == 2
    assert report["auc"] == pytest.approx(0.9, abs=1e-3)


def test_shape_mismatch_and_zero_distance_are_errors():
    with pytest.raises(ValueError, match="must both be"):
        nme(np.zeros((1, 51, 2)), np.zeros((1, 50, 2)), SCHEME)
    with pytest.raises(ValueError, match="zero normalising distance"):
        nme(np.zeros((1, 51, 2)), np.zeros((1, 51, 2)), SCHEME)
