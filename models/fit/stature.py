"""A stature the user knows, as a constraint on the fitted Anny phenotype.

One uncalibrated camera cannot tell a small near person from a large far one, and BlazePose's metric
world landmarks describe an average adult whatever the person's size (docs/accuracy.md, "Body size"):
the fitted body comes out ~1.6 m tall for everyone. An animator usually knows the actor's height, so
the fit can take it as a constraint on the phenotype rather than a guess from the pixels.

Stature here is the vertical extent of Anny's rest mesh (rest model axes, z up): crown to sole,
standing straight, the quantity a tape measure gives. It is nearly linear in the `height` phenotype
(about 1.02 m per unit at the average of the others; 0.25 m between 0.25 and 0.5 and again between
0.5 and 0.75), and also depends on gender and, strongly, on age. The constraint is met by the `height`
value alone: for any other five values, `height` is solved so that the stature is the target
(`StatureLine.solve` on the linearisation the shape phases use, `exact_height` on the exact mesh at
the end), so the data still choose the body's build, gender and proportions.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from video2mesh.models.body.anny_body import PHENOTYPES, AnnyBody, Skeleton

log = logging.getLogger(__name__)

HEIGHT = PHENOTYPES.index("height")
# What the constraint moves: `height`, and `age` only for what height cannot reach (at 0 or 1): with
# the 3D landmarks' size unknown the data could otherwise lower age to shrink the body (measured on a
# synthetic track: age 0.5 -> 0.19 at a fixed height, a child's proportions)
SOLVED = (HEIGHT, PHENOTYPES.index("age"))
_EPS = 1e-4          # phenotype values stay inside (0, 1): the fit's unknowns are their logits


def rest_stature(body: AnnyBody, phenotype: np.ndarray) -> float:
    """Stature in metres (vertical extent of the rest mesh) of the Anny body of phenotype (6,) in [0, 1]."""
    with torch.no_grad():
        sk = body.skeleton(torch.as_tensor(np.asarray(phenotype, np.float64)[None], dtype=body.dtype))
        z = sk.rest_vertices[:, 2]
        return float(z.max() - z.min())


@dataclass(frozen=True)
class StatureLine:
    """Stature linearised around the average phenotype: s(p) = s0 + grad . (p - 0.5), metres."""

    s0: float
    grad: np.ndarray          # (6,) metres per unit of each phenotype value

    @classmethod
    def build(cls, body: AnnyBody, step: float = 0.1) -> StatureLine:
        """Finite differences of rest_stature at the average (the step of anny_fit.linear_skeleton)."""
        base = np.full(6, 0.5)
        s0 = rest_stature(body, base)
        grad = np.zeros(6)
        for i in range(6):
            p = base.copy()
            p[i] += step
            grad[i] = (rest_stature(body, p) - s0) / step
        return cls(s0=s0, grad=grad)

    def at(self, phenotype: np.ndarray) -> float:
        return float(self.s0 + self.grad @ (np.asarray(phenotype, np.float64) - 0.5))

    def solve(self, phenotype: np.ndarray, target_m: float) -> np.ndarray:
        """phenotype (6,) with `height` (then, where height reaches 0 or 1, `age`) set so that the linear
        stature is target_m, each clipped to (0, 1)."""
        p = np.array(phenotype, np.float64)
        for i in SOLVED:
            p[i] = np.clip(p[i] + (target_m - self.at(p)) / self.grad[i], _EPS, 1 - _EPS)
        return p


def constrain_logits(phen_logit: torch.Tensor, line: StatureLine, target_m: float) -> None:
    """Project the fit's phenotype logits (6,) in place onto linear stature = target_m (StatureLine.solve).
    Called before every step of the shape phases, so Adam's step on the others is followed by the
    height that keeps the stature: a hard constraint, no weight to tune."""
    with torch.no_grad():
        p = line.solve(torch.sigmoid(phen_logit).double().numpy(), target_m)
        for i in SOLVED:
            phen_logit[i] = float(np.log(p[i] / (1 - p[i])))


def exact_height(body: AnnyBody, phenotype: np.ndarray, target_m: float, tol_m: float = 5e-4) -> np.ndarray:
    """phenotype (6,) with `height` (then `age`, see SOLVED) solved on the exact rest mesh so that
    rest_stature is target_m within tol_m (the linearisation is a few mm off away from the average).
    Logs a warning and returns the nearest reachable body when target_m is out of Anny's range."""
    p = np.array(phenotype, np.float64)
    s = rest_stature(body, p)
    for i in SOLVED:
        p, s = _secant(body, p, i, s, target_m, tol_m)
    if abs(s - target_m) > 0.01:
        log.warning("stature %.2f m is outside what the Anny body reaches (%.2f m at height %.2f, age %.2f)",
                    target_m, s, p[HEIGHT], p[SOLVED[1]])
    return p


def _secant(body: AnnyBody, p: np.ndarray, i: int, s: float, target_m: float, tol_m: float,
            iters: int = 6) -> tuple[np.ndarray, float]:
    """Secant steps on phenotype value i (clipped to (0, 1)) towards rest_stature = target_m; s is the
    stature at p. Returns the new phenotype and its stature."""
    p = p.copy()
    x0, s0 = p[i], s
    x1 = float(np.clip(x0 + 0.05 * np.sign(target_m - s0), _EPS, 1 - _EPS))
    for _ in range(iters):
        if abs(s0 - target_m) <= tol_m or x1 == x0:
            break
        p[i] = x1
        s1 = rest_stature(body, p)
        slope = (s1 - s0) / (x1 - x0) if abs(s1 - s0) > 1e-9 else 1.0
        x0, s0 = x1, s1
        x1 = float(np.clip(x1 + (target_m - s1) / slope, _EPS, 1 - _EPS))
    p[i] = x0
    return p, s0


_LINES: dict[int, tuple[AnnyBody, StatureLine]] = {}   # id(body) -> (body, its linearisation): ~1 s, once per body


def stature_line(body: AnnyBody) -> StatureLine:
    """StatureLine.build(body), computed once per loaded body (the entry keeps the body, so its id is not reused)."""
    held = _LINES.get(id(body))
    if held is None or held[0] is not body:
        held = _LINES[id(body)] = (body, StatureLine.build(body))
    return held[1]


@dataclass
class KnownStature:
    """One track's stature constraint as the fit uses it (models/fit/anny_fit.fit_track).

    phenotype (6,): the starting shape (the caller's, or the average) with `height` solved exactly;
    rest: its exact rest skeleton, whose size sets the initial depth (z = f * height / pixel height, so
    a body of the right size starts at the right distance)."""

    body: AnnyBody
    target_m: float
    line: StatureLine
    phenotype: np.ndarray
    rest: Skeleton

    @classmethod
    def build(cls, body: AnnyBody, target_m: float, phenotype: np.ndarray | None = None) -> KnownStature:
        line = stature_line(body)
        start = line.solve(np.full(6, 0.5), target_m) if phenotype is None else np.asarray(phenotype, np.float64)
        p = exact_height(body, start, target_m)
        with torch.no_grad():
            rest = body.skeleton(torch.as_tensor(p[None], dtype=body.dtype))
        return cls(body=body, target_m=target_m, line=line, phenotype=p, rest=rest)

    def start(self, phen_logit: torch.Tensor) -> None:
        """Set the fit's phenotype logits (6,) to the starting shape."""
        p = np.clip(self.phenotype, _EPS, 1 - _EPS)
        with torch.no_grad():
            phen_logit.copy_(torch.as_tensor(np.log(p / (1 - p)), dtype=phen_logit.dtype))

    def project(self, phen_logit: torch.Tensor) -> torch.Tensor:
        """constrain_logits in place (the linear stature, as the shape phases' linear skeleton); returns it."""
        constrain_logits(phen_logit, self.line, self.target_m)
        return phen_logit

    def finish(self, phen_logit: torch.Tensor) -> None:
        """Re-solve `height` on the exact mesh before the exact skeleton is built (logits in place)."""
        with torch.no_grad():
            self.phenotype = exact_height(self.body, torch.sigmoid(phen_logit).double().numpy(), self.target_m)
        self.start(phen_logit)
