"""Fusing per-modality tokens into one feature vector.

`concat` keeps every token side by side (cheap, no interaction). `attention` lets the modalities talk:
one transformer encoder layer over the tokens, where the goal token (or a learned query when there is
no goal) attends to the senses; the output is that token's result joined with the mean of all
outputs, so the policy sees both "what matters for this goal" and "what is there".
"""

from __future__ import annotations

import torch
from torch import nn

from perception.errors import InputError

FUSION_MODES = ("concat", "attention")


def fused_dim(mode: str, n_tokens: int, token_dim: int) -> int:
    """Size of the fused features, known before any module is built (SB3 needs it up front)."""
    if mode == "concat":
        return n_tokens * token_dim
    if mode == "attention":
        return 2 * token_dim
    raise InputError(f"unknown fusion mode {mode!r}; expected one of: {', '.join(FUSION_MODES)}")


class ConcatFusion(nn.Module):
    """Concatenate the tokens in a fixed order."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """All tokens concatenated: (batch, n_tokens, dim) to (batch, n_tokens * dim)."""
        return tokens.flatten(start_dim=1)


class AttentionFusion(nn.Module):
    """One pre-norm transformer encoder layer over the modality tokens.

    Args:
        n_tokens: number of modality tokens handed to forward.
        token_dim: size of each token; must be divisible by `heads`.
        query_index: position of the goal token, or None to prepend a learned query token.
    """

    def __init__(self, n_tokens: int, token_dim: int, query_index: int | None, heads: int = 4) -> None:
        super().__init__()
        if token_dim % heads:
            raise ValueError(f"token_dim ({token_dim}) must be divisible by the number of heads ({heads})")
        self.query_index = query_index
        total = n_tokens + (1 if query_index is None else 0)
        self.query = nn.Parameter(torch.zeros(1, 1, token_dim)) if query_index is None else None
        # A learned "which modality is this" embedding, since attention itself is order-blind.
        self.modality = nn.Parameter(torch.randn(1, total, token_dim) * 0.02)
        self.layer = nn.TransformerEncoderLayer(
            token_dim, heads, dim_feedforward=2 * token_dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.norm = nn.LayerNorm(token_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """The query token's output (learned, or the goal's) concatenated with the mean over all outputs."""
        if self.query is not None:
            tokens = torch.cat([self.query.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        out = self.norm(self.layer(tokens + self.modality))
        query = out[:, 0 if self.query_index is None else self.query_index]
        return torch.cat([query, out.mean(dim=1)], dim=1)


def make_fusion(mode: str, n_tokens: int, token_dim: int, query_index: int | None) -> nn.Module:
    """Build the fusion module named by `mode`."""
    fused_dim(mode, n_tokens, token_dim)  # validates the name
    return ConcatFusion() if mode == "concat" else AttentionFusion(n_tokens, token_dim, query_index)
