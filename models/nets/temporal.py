"""VIBE's temporal encoder: GRU(2048 -> 1024, 2 layers, unidirectional), Linear(1024 -> 2048) on
ReLU(GRU output), residual + input (METHOD.md section 2). Unidirectional, so a long track can be
streamed in chunks: pass the returned hidden state to the next call.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class TemporalEncoder(nn.Module):
    """f (B, T, C) -> g (B, T, C), hidden (L, B, H). Parameter names are VIBE's (`gru.*`, `linear.*`)."""

    def __init__(self, in_dim: int = 2048, hidden: int = 1024, n_layers: int = 2) -> None:
        super().__init__()
        self.gru = nn.GRU(input_size=in_dim, hidden_size=hidden, num_layers=n_layers, batch_first=True)
        self.linear = nn.Linear(hidden, in_dim)

    def forward(self, f: torch.Tensor, h0: torch.Tensor | None = None,
                lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """f (B, T, C); h0 (L, B, H) or None (zeros); lengths (B,) of right-padded sequences or None.

        With `lengths`, the returned hidden state of each sequence is the one after its last valid
        frame (packed sequence), and padded output rows are zeros plus the residual.
        """
        if lengths is None:
            y, h = self.gru(f, h0)
        else:
            packed = pack_padded_sequence(f, lengths.cpu(), batch_first=True, enforce_sorted=False)
            y, h = self.gru(packed, h0)
            y, _ = pad_packed_sequence(y, batch_first=True, total_length=f.shape[1])
        return self.linear(F.relu(y)) + f, h
