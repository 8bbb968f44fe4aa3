"""Export-friendly replacements for timm layers that old TFLite converters/runtimes reject.

timm's MobileViT-v2 ``LinearSelfAttention`` multiplies tensors of shapes (B, d, P, N) and
(B, 1, P, N), then expands the context vector with ``expand_as``; the TFLite converter rejects the
resulting broadcast ("tfl.mul op operands don't have broadcast-compatible shapes"). The
replacement computes the context with one batched matmul over patches and broadcasts only
along the last axis. It holds the same parameters and is numerically identical.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models.mobilevit import LinearSelfAttention
from torch import nn


class ExportSafeLinearSelfAttention(nn.Module):
    """Separable linear self-attention (MobileViT-v2) on (B, C, P, N): P pixels per patch, N patches."""

    def __init__(self, original: LinearSelfAttention):
        super().__init__()
        self.embed_dim = original.embed_dim
        self.qkv_proj = original.qkv_proj
        self.attn_drop = original.attn_drop
        self.out_proj = original.out_proj
        self.out_drop = original.out_drop

    def forward(self, x: torch.Tensor, x_prev: torch.Tensor | None = None) -> torch.Tensor:
        if x_prev is not None:
            raise NotImplementedError("cross-attention is not used by the landmark models")
        query, key, value = self.qkv_proj(x).split([1, self.embed_dim, self.embed_dim], dim=1)
        scores = self.attn_drop(F.softmax(query, dim=-1))  # (B, 1, P, N)
        # context[b, d, p] = sum_n key[b, d, p, n] * scores[b, 0, p, n], as a matmul over n.
        context = torch.matmul(key.permute(0, 2, 1, 3), scores.permute(0, 2, 3, 1))  # (B, P, d, 1)
        out = F.relu(value) * context.permute(0, 2, 1, 3)  # (B, d, P, N) * (B, d, P, 1)
        return self.out_drop(self.out_proj(out))


def make_export_safe(model: nn.Module) -> nn.Module:
    """Swap every timm ``LinearSelfAttention`` in ``model`` for the export-safe one (in place)."""
    for name, child in model.named_children():
        if isinstance(child, LinearSelfAttention):
            setattr(model, name, ExportSafeLinearSelfAttention(child))
        else:
            make_export_safe(child)
    return model
