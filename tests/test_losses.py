"""Losses against independent expectations: eigh, the piecewise AWing, KD identities."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lib.data.targets import gaussian_maps
from lib.losses.awing import AWingLoss, adaptive_wing, awing_weight_map
from lib.losses.criterion import LandmarkCriterion, LossWeights
from lib.losses.distill import FeatureKD, heatmap_kd
from lib.losses.star import STARLoss, heatmap_moments, symmetric_eig2


def random_spd(count: int, generator: torch.Generator, isotropic: bool = False) -> torch.Tensor:
    if isotropic:
        scale = torch.rand(count, 1, 1, generator=generator, dtype=torch.float64) + 0.1
        noise = 1e-7 * torch.randn(count, 2, 2, generator=generator, dtype=torch.float64)
        return scale * torch.eye(2, dtype=torch.float64) + (noise + noise.transpose(1, 2)) / 2
    a = torch.randn(count, 2, 2, generator=generator, dtype=torch.float64)
    return a @ a.transpose(1, 2) + 0.01 * torch.eye(2, dtype=torch.float64)


@pytest.mark.parametrize("isotropic", [False, True])
def test_closed_form_eig_matches_eigh(isotropic):
    matrices = random_spd(500, torch.Generator().manual_seed(0), isotropic)
    lambda_1, lambda_2, u_1, u_2 = symmetric_eig2(matrices[:, 0, 0], matrices[:, 0, 1], matrices[:, 1, 1], eps=0.0)
    values, vectors = torch.linalg.eigh(matrices)
    torch.testing.assert_close(lambda_1, values[:, 0], atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(lambda_2, values[:, 1], atol=1e-9, rtol=1e-9)
    # Each vector is a unit eigenvector: M u = lambda u (directions are unique up to sign only
    # when the eigenvalues differ, so check the defining equation rather than eigh's vectors).
    for value, vector in ((lambda_1, u_1), (lambda_2, u_2)):
        torch.testing.assert_close((matrices @ vector[..., None])[..., 0], value[:, None] * vector, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(vector.norm(dim=-1), torch.ones(500, dtype=torch.float64))
    if not isotropic:
        torch.testing.assert_close((u_1 * vectors[:, :, 0]).sum(-1).abs(), torch.ones(500, dtype=torch.float64), atol=1e-7, rtol=0)


def test_star_gradients_are_finite_on_isotropic_maps():
    grid = 16
    centre = torch.tensor([[[7.5, 7.5], [3.2, 9.1]]])
    maps = torch.from_numpy(gaussian_maps(centre[0].numpy(), grid, 2.0))[None].double().requires_grad_(True)
    _, cov = heatmap_moments(maps)
    assert abs(float(cov[0, 0, 1].detach())) < 1e-12  # exactly isotropic Gaussian at the grid centre
    loss = STARLoss()(maps, torch.tensor([[[0.1, -0.2], [0.0, 0.3]]], dtype=torch.float64))
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(maps.grad).all()


def test_heatmap_moments_of_a_gaussian():
    maps = torch.from_numpy(gaussian_maps(torch.tensor([[20.3, 30.6]]).numpy(), 64, 1.5))[None].double()
    mean, cov = heatmap_moments(maps)
    torch.testing.assert_close(mean[0, 0], torch.tensor([(2 * 20.3 + 1) / 64 - 1, (2 * 30.6 + 1) / 64 - 1], dtype=torch.float64), atol=1e-4, rtol=0)
    weights = maps / maps.sum()
    variance = (2 * 1.5 / 64) ** 2 / (1 - float((weights**2).sum()))  # sigma in cells -> [-1, 1], unbiased
    torch.testing.assert_close(cov[0, 0], torch.tensor([variance, 0.0, variance], dtype=torch.float64), atol=2e-5, rtol=0)


def test_heatmap_moments_match_numpys_weighted_covariance():
    maps = torch.rand(2, 3, 7, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64) ** 4 - 0.05  # skewed, a few cells below 0
    mean, cov = heatmap_moments(maps)
    ys, xs = np.meshgrid((2 * np.arange(7) + 1) / 7 - 1, (2 * np.arange(9) + 1) / 9 - 1, indexing="ij")
    for b in range(2):
        for n in range(3):
            weights = maps[b, n].clamp_min(0).numpy().ravel()
            expected = np.cov(np.stack([xs.ravel(), ys.ravel()]), aweights=weights)  # unbiased: V1 - V2 / V1
            np.testing.assert_allclose(mean[b, n].numpy(), np.average(np.stack([xs.ravel(), ys.ravel()]), axis=1, weights=weights), rtol=0, atol=1e-6)
            np.testing.assert_allclose(cov[b, n].numpy(), [expected[0, 0], expected[0, 1], expected[1, 1]], rtol=1e-5, atol=1e-9)


def test_star_is_smaller_for_a_correct_prediction():
    maps = torch.from_numpy(gaussian_maps(torch.tensor([[10.0, 12.0]]).numpy(), 32, 1.0))[None]
    truth = torch.tensor([[[(2 * 10 + 1) / 32 - 1, (2 * 12 + 1) / 32 - 1]]])
    star = STARLoss()
    assert star(maps, truth) < star(maps, truth + 0.2)


def awing_by_hand(y: float, p: float, omega=14.0, theta=0.5, epsilon=1.0, alpha=2.1) -> float:
    delta = abs(y - p)
    if delta < theta:
        return omega * math.log(1 + (delta / epsilon) ** (alpha - y))
    a = omega * (1 / (1 + (theta / epsilon) ** (alpha - y))) * (alpha - y) * (theta / epsilon) ** (alpha - y - 1) / epsilon
    c = theta * a - omega * math.log(1 + (theta / epsilon) ** (alpha - y))
    return a * delta - c


@pytest.mark.parametrize(("y", "p"), [(0.0, 0.1), (0.0, 0.49), (0.0, 0.51), (0.0, 0.95), (1.0, 0.7), (1.0, 0.2), (0.6, 0.0), (0.3, 0.3)])
def test_awing_matches_its_piecewise_definition_on_both_sides_of_theta(y, p):
    value = adaptive_wing(torch.tensor([p], dtype=torch.float64), torch.tensor([y], dtype=torch.float64))
    assert float(value) == pytest.approx(awing_by_hand(y, p), rel=1e-10, abs=1e-12)


def test_awing_is_continuous_at_theta():
    y = torch.tensor([0.2], dtype=torch.float64)
    below = adaptive_wing(y + 0.5 - 1e-9, y)
    above = adaptive_wing(y + 0.5 + 1e-9, y)
    assert float(below) == pytest.approx(float(above), abs=1e-6)


def test_awing_weight_map():
    target = torch.zeros(1, 1, 5, 5)
    target[0, 0, 2, 2] = 0.5
    weights = awing_weight_map(target, weight=10.0, threshold=0.2)
    assert weights[0, 0, 1:4, 1:4].eq(10).all()
    assert weights.sum() == 9 * 10 + 16


def test_awing_weight_map_is_the_dilated_target_above_threshold():
    target = torch.rand(3, 4, 11, 13, generator=torch.Generator().manual_seed(2)) ** 6
    dilated = F.max_pool2d(target, kernel_size=3, stride=1, padding=1)  # grey dilation, the border padded with -inf
    torch.testing.assert_close(awing_weight_map(target, weight=10.0, threshold=0.2), 1.0 + 9.0 * (dilated > 0.2).float(), rtol=0, atol=0)


def test_awing_loss_gradient_is_autograds_of_the_piecewise_definition():
    """The loss's closed-form slope against autograd through the definition written out by hand
    (both sides of theta, targets 0 to 1, a prediction equal to its target)."""
    generator = torch.Generator().manual_seed(3)
    target = torch.rand(2, 5, 6, 6, generator=generator, dtype=torch.float64) ** 3
    pred = torch.rand(2, 5, 6, 6, generator=generator, dtype=torch.float64)
    pred[0, 0, 0, 0] = target[0, 0, 0, 0]
    omega, theta, epsilon, alpha = 14.0, 0.5, 1.0, 2.1
    reference = pred.clone().requires_grad_(True)
    delta, power = (target - reference).abs(), alpha - target
    a = omega * (1 / (1 + (theta / epsilon) ** power)) * power * (theta / epsilon) ** (power - 1) / epsilon
    c = theta * a - omega * torch.log(1 + (theta / epsilon) ** power)
    by_hand = torch.where(delta < theta, omega * torch.log(1 + (delta / epsilon) ** power), a * delta - c)
    weights = 1.0 + 9.0 * (F.max_pool2d(target, 3, 1, 1) > 0.2).double()
    expected = (by_hand * weights).mean()
    expected.backward()
    assert (delta < theta).any()
    assert (delta >= theta).any()
    closed_form = pred.clone().requires_grad_(True)
    loss = AWingLoss()(closed_form, target)
    loss.backward()
    torch.testing.assert_close(loss, expected.detach(), rtol=1e-12, atol=0)
    torch.testing.assert_close(closed_form.grad, reference.grad, rtol=1e-9, atol=1e-12)
    assert float(closed_form.grad[0, 0, 0, 0]) == 0.0  # |y - p| has slope 0 where the prediction is exact


def test_heatmap_kd_is_zero_for_identical_maps_and_positive_otherwise():
    maps = torch.rand(2, 3, 8, 8)
    for mode in ("l2", "mse", "kl"):
        assert float(heatmap_kd(maps, maps.clone(), mode)) == pytest.approx(0.0, abs=1e-5)
        assert float(heatmap_kd(maps, maps + 0.1, mode)) > 0
    other = maps + torch.ones(8, 8)  # every map differs by an all-ones 8x8 map: L2 = 8
    assert float(heatmap_kd(maps, other, "l2")) == pytest.approx(8.0, rel=1e-5)
    with pytest.raises(ValueError, match="unknown heatmap KD mode"):
        heatmap_kd(maps, maps, "nope")


def test_kl_kd_by_hand_and_blind_to_scale():
    teacher = torch.tensor([[[[3.0, 1.0], [0.0, 0.0]]]])
    student = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]]]])
    p = (torch.tensor([3.0, 1.0, 0.0, 0.0]) + 1e-4) / (4 + 4e-4)
    expected = float((p * (p / 0.25).log()).sum())  # ~ 0.75 log 3 + 0.25 log 1 = 0.824 nats
    assert float(heatmap_kd(student, teacher, "kl")) == pytest.approx(expected, rel=1e-5)
    assert float(heatmap_kd(student * 7.0, teacher, "kl")) == pytest.approx(expected, rel=1e-5)
    empty = torch.zeros(1, 1, 2, 2, requires_grad=True)  # a student map with no positive cell
    heatmap_kd(empty, teacher, "kl").backward()
    assert torch.isfinite(empty.grad).all()


def test_feature_kd_projects_student_channels():
    loss = FeatureKD(4, 6)(torch.rand(2, 4, 3, 3), torch.rand(2, 6, 3, 3))
    loss.backward()
    assert loss > 0


def fake_outputs(batch: int = 2, points: int = 51, edges: int = 8, grid: int = 16, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {
        "features": torch.rand(batch, 4, 2, 2, generator=generator, requires_grad=True),
        "heatmap": torch.randn(batch, points, grid, grid, generator=generator),
        "pointmap": torch.randn(batch, points, grid, grid, generator=generator, requires_grad=True),
        "edgemap": torch.randn(batch, edges, grid, grid, generator=generator, requires_grad=True),
        "fused": torch.rand(batch, points, grid, grid, generator=generator, requires_grad=True),
    }


def fake_batch(batch: int = 2, points: int = 51, edges: int = 8, grid: int = 16) -> dict:
    return {
        "points_norm": torch.rand(batch, points, 2) * 2 - 1,
        "pointmap": torch.rand(batch, points, grid, grid),
        "edgemap": torch.rand(batch, edges, grid, grid),
    }


def test_criterion_terms_and_kd_weight_zero():
    outputs, teacher, batch = fake_outputs(seed=0), fake_outputs(seed=1), fake_batch()
    teacher["features"] = torch.rand(2, 6, 2, 2)
    plain = LandmarkCriterion(LossWeights())
    total, terms = plain(outputs, batch)
    terms = {k: float(v) for k, v in terms.items()}
    assert set(terms) == {"star", "pointmap", "edgemap", "total"}
    assert terms["total"] == pytest.approx(terms["star"] + 10 * terms["pointmap"] + 10 * terms["edgemap"], rel=1e-5)
    distilling = LandmarkCriterion(LossWeights(kd=2.0, feature_kd=0.5), student_channels=4, teacher_channels=6)
    total_kd, terms_kd = distilling(outputs, batch, teacher)
    terms_kd = {k: float(v) for k, v in terms_kd.items()}
    assert terms_kd["total"] == pytest.approx(terms["total"] + 2 * terms_kd["kd"] + 0.5 * terms_kd["feature_kd"], rel=1e-5)
    # The KD term changes the student's gradients; with weight 0 it is gone.
    grad_plain = torch.autograd.grad(total, outputs["fused"], retain_graph=True)[0]
    grad_kd = torch.autograd.grad(total_kd, outputs["fused"])[0]
    assert not torch.allclose(grad_plain, grad_kd)
    zero_total, zero_terms = LandmarkCriterion(LossWeights(kd=0.0))(outputs, batch, teacher)
    assert "kd" not in zero_terms
    assert float(zero_total.detach()) == pytest.approx(float(total.detach()))
    with pytest.raises(ValueError, match="need teacher_outputs"):
        LandmarkCriterion(LossWeights(kd=1.0))(outputs, batch)
