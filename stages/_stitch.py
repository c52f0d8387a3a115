"""Offline stitching of tracklet pieces that belong to one person (after an occlusion or a missed stretch).

Classic tracklet linking (Huang, Wu & Nevatia, ECCV 2008; Zhang, Li & Nevatia, CVPR 2008): every ordered
pair (a, b) of pieces that do not overlap in time, b starting at most `max_gap` frames after a ends, is a
candidate link with a cost; one global assignment (Hungarian, each piece at most one successor and one
predecessor) keeps the cheapest consistent links, and chains of links are the people.

A candidate must pass three gates, each a plain physical or visual test:
- motion: a constant-velocity extrapolation of a's box centre to b's first frame, and of b's back to a's
  last frame, lands within `motion_gate` x (box height) x (1 + gap in seconds) of the other end (the
  allowance grows with the gap: a walker who turns drifts from the straight line);
- scale: the box heights at the two ends differ by at most a factor `max_scale`;
- appearance: the Hellinger distance of the pieces' colour descriptors is <= `max_appearance`. A piece
  hidden behind others in every frame it was detected has no colour of its own (its box shows the people in
  front): the gate cannot judge it, and such a link costs the gate's limit, the worst colour a link may have.
cost = appearance distance + motion error (in the allowance's units); lower is likelier.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ._appearance import distance

FORBIDDEN = 1e6
NO_LINK = 1.0            # cost of leaving a piece without successor (or predecessor): any gated link is cheaper
VELOCITY_FRAMES = 15     # frames at a piece's end that its velocity is fitted on


@dataclass(frozen=True)
class Piece:
    """One tracklet piece: frames (T,) sorted, boxes (T, 4) x1 y1 x2 y2, desc (D,) or None; hidden: occluded in
    every frame, so desc is None because its colour is unknown (not because there is no colour at all)."""

    frames: np.ndarray
    boxes: np.ndarray
    desc: np.ndarray | None = None
    hidden: bool = False


@dataclass(frozen=True)
class StitchGates:
    max_gap: int               # frames between a's last and b's first frame
    fps: float
    motion_gate: float = 0.5
    max_scale: float = 1.5
    max_appearance: float = 0.4
    min_hidden: int = 0        # a link with no colour evidence (a hidden piece) needs one of its two pieces this long
    # (detected frames): it may extend a person `min_len` would keep, not join fragments it would each drop


def _centre(boxes: np.ndarray) -> np.ndarray:
    return 0.5 * (boxes[:, :2] + boxes[:, 2:])


def _extrapolate(frames: np.ndarray, boxes: np.ndarray, to_frame: int, tail: bool) -> np.ndarray:
    """Box centre (2,) at `to_frame` from a line fitted to the last (tail) or first frames' centres."""
    sl = slice(-VELOCITY_FRAMES, None) if tail else slice(0, VELOCITY_FRAMES)
    f, c = frames[sl].astype(float), _centre(boxes[sl])
    if len(f) < 2:
        return c[-1 if tail else 0]
    slope = np.polyfit(f - f.mean(), c, 1)                  # (2, 2): velocity, centre at the mean frame
    return slope[1] + slope[0] * (to_frame - f.mean())


def link_cost(a: Piece, b: Piece, g: StitchGates) -> float:
    """Cost of "b continues a" (FORBIDDEN when a gate fails)."""
    gap = int(b.frames[0] - a.frames[-1])
    if gap < 1 or gap > g.max_gap:
        return FORBIDDEN
    ha, hb = a.boxes[-1, 3] - a.boxes[-1, 1], b.boxes[0, 3] - b.boxes[0, 1]
    if min(ha, hb) <= 0 or max(ha, hb) / min(ha, hb) > g.max_scale:
        return FORBIDDEN
    allow = g.motion_gate * 0.5 * (ha + hb) * (1.0 + gap / g.fps)
    fwd = np.linalg.norm(_extrapolate(a.frames, a.boxes, b.frames[0], tail=True) - _centre(b.boxes[:1])[0])
    bwd = np.linalg.norm(_extrapolate(b.frames, b.boxes, a.frames[-1], tail=False) - _centre(a.boxes[-1:])[0])
    motion = 0.5 * (fwd + bwd) / allow
    if motion > 1.0:
        return FORBIDDEN
    if a.hidden or b.hidden:
        if max(len(a.frames), len(b.frames)) < g.min_hidden:
            return FORBIDDEN           # motion alone may extend someone established, not make one of fragments
        app = g.max_appearance
    else:
        app = distance(a.desc, b.desc) if a.desc is not None and b.desc is not None else 0.0
    if app > g.max_appearance:
        return FORBIDDEN
    return app + motion


def stitch(pieces: list[Piece], g: StitchGates) -> list[list[int]]:
    """Chains of piece indices (each in time order); every piece is in exactly one chain."""
    n = len(pieces)
    if n < 2:
        return [[i] for i in range(n)]
    cost = np.array([[link_cost(a, b, g) if i != j else FORBIDDEN for j, b in enumerate(pieces)]
                     for i, a in enumerate(pieces)])
    # (2n, 2n): links | "a ends here" on the diagonal, "b starts here" | free; so a link is taken only when it
    # beats leaving both ends open (2 NO_LINK), not merely to make the assignment perfect
    open_ = np.full((n, n), FORBIDDEN)
    np.fill_diagonal(open_, NO_LINK)
    full = np.block([[cost, open_], [open_, np.zeros((n, n))]])
    nxt: dict[int, int] = {}
    for i, j in zip(*linear_sum_assignment(full)):
        if i < n and j < n and cost[i, j] < FORBIDDEN:
            nxt[int(i)] = int(j)
    starts = sorted(set(range(n)) - set(nxt.values()))
    chains = []
    for s in starts:
        chain = [s]
        while chain[-1] in nxt:
            chain.append(nxt[chain[-1]])
        chains.append(chain)
    return chains
