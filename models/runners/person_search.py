"""Finding every person in a frame with BlazePose's networks: tiles, NMS, and ROIs carried between frames.

BlazePose's detector sees a 224 x 224 letterboxed square and finds a person by the face, so on a whole
1280 x 720 frame a 120 px person is ~20 px tall at its input and people seen from the side or back are
often missed. Two remedies, both with the same Apache-2.0 networks:

- tiles: the detector also runs on overlapping squares of side `tile_frac * min(H, W)` (one or more
  scales), each mapped back to image pixels exactly (`Roi.crop_to_image`), then merged by NMS;
- tracking ROIs (MediaPipe's own video mode): a person found in frame t gives a rotated ROI for
  frame t + 1 (from the landmark model's two alignment points); the landmark model runs there and the
  person is kept while its pose flag stays >= `keep_score`. This follows people whose face the
  detector cannot see (turned away, partly occluded) once they have been found once.

One person found several ways (whole frame, tiles, ROIs) must give one box: boxes merge by IoU; a newly
detected person's box comes from the landmark model (`verify`), a new box inside a followed one is a
part of it (`new_cover`), and two landmark sets that nearly coincide are one person (`same_pose`),
which, unlike box overlap, keeps two people crossing apart.

`PersonSearch` holds the ROIs of one sequence of consecutive frames; a new one starts empty (a stage
chunk starts one, so every chunk gives the same boxes whether run alone or after another).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..maths.motion_proposals import MotionConfig, MotionProposer
from .blazepose import BlazePose, Roi, roi_from_alignment, roi_from_box


def tile_rois(width: int, height: int, tile_fracs: tuple[float, ...], overlap: float) -> list[Roi]:
    """Upright square tiles covering a width x height image at each scale, neighbours overlapping by
    `overlap` of the side; the first and last tile of a row/column touch the image border.

    tile_fracs: tile side as a fraction of min(width, height); a fraction >= 1 (or a tile that would
    cover the whole frame) gives no tiles: the full-frame pass already covers it. 1.0 on a 16:9 frame
    gives two squares of the frame's height.
    """
    out = []
    for frac in tile_fracs:
        side = frac * min(width, height)
        if side >= max(width, height):
            continue
        step = side * (1 - overlap)
        xs = _positions(width, side, step)
        ys = _positions(height, side, step)
        out += [Roi(x + side / 2, y + side / 2, side, 0.0) for y in ys for x in xs]
    return out


def _positions(length: float, side: float, step: float) -> np.ndarray:
    """Left edges of tiles of `side` covering [0, length] with stride <= step, ends on the borders."""
    if side >= length:
        return np.array([(length - side) / 2])
    n = int(np.ceil((length - side) / step)) + 1
    return np.linspace(0, length - side, n)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, cover: float = 1.0) -> np.ndarray:
    """Greedy non-max suppression: indices of the kept boxes, best score first.

    boxes (N, 4) x1, y1, x2, y2 pixels; scores (N,); a box is dropped when its IoU with a kept,
    better-scoring box is > iou (the convention of torchvision.ops.nms), or when their intersection
    covers > `cover` of the smaller of the two (nested boxes; 1.0 = off).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores), kind="stable")
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(int(i))
        lo = np.maximum(boxes[i, :2], boxes[rest, :2])
        hi = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = np.clip(hi - lo, 0, None).prod(-1)
        ov = inter / np.maximum(area[i] + area[rest] - inter, 1e-12)
        nested = inter / np.maximum(np.minimum(area[i], area[rest]), 1e-12)
        order = rest[(ov <= iou) & (nested <= cover)]
    return np.array(keep, np.int64)


def body_box(hip: np.ndarray, circle: np.ndarray, half_width: float = 0.5) -> np.ndarray:
    """Whole-body box [x1, y1, x2, y2] from BlazePose's alignment points (pixels).

    `hip` is the hip centre and `circle` a point at distance r on the body's axis, so the body spans
    hip +- r along the axis and +- half_width * r across it; the box is that rectangle's extent.
    """
    axis = np.asarray(circle, np.float64) - hip
    r = float(np.hypot(*axis))
    if r == 0:
        return np.array([hip[0], hip[1], hip[0], hip[1]], np.float32)
    u = axis / r
    v = np.array([-u[1], u[0]])
    corners = np.array([hip + a * r * u + b * half_width * r * v for a in (-1, 1) for b in (-1, 1)])
    return np.concatenate([corners.min(0), corners.max(0)]).astype(np.float32)


def landmark_box(landmarks: np.ndarray, pad: float) -> np.ndarray:
    """Whole-body box [x1, y1, x2, y2] from BlazePose's 33 landmarks (33, 2) pixels: their extent grown by
    `pad` x its larger side on every side (the landmarks are joints and eyes: the crown, the soles and the
    body's flesh lie a little outside them). Tighter than `body_box`, whose alignment circle is ~1.2 x the
    body: that box also covers a neighbour standing behind, so a scorer (or the tracker) can take it for them."""
    lo, hi = landmarks.min(0), landmarks.max(0)
    m = pad * float(max(hi - lo))
    return np.concatenate([lo - m, hi + m]).astype(np.float32)


def inside_share(box: np.ndarray, others: list[np.ndarray]) -> float:
    """The largest share of `box` (4,) covered by one of the bigger boxes `others` (0 if none)."""
    area = lambda b: max(b[2] - b[0], 0) * max(b[3] - b[1], 0)  # noqa: E731
    best = 0.0
    for o in others:
        if area(o) >= area(box) > 0:
            inter = max(min(box[2], o[2]) - max(box[0], o[0]), 0) * max(min(box[3], o[3]) - max(box[1], o[1]), 0)
            best = max(best, inter / area(box))
    return best


def same_person_once(found: list[tuple], same_pose: float, smallest: bool = False) -> list[tuple]:
    """Drop landmark results that repeat a better one: two ROIs on one person give nearly the same 33
    landmarks (median distance < same_pose x the body's half-height), while two people, even crossing
    with overlapping boxes, do not. Items: (box, score, roi, (33, 2) landmarks or None[, follower, shift, drifted]);
    those without landmarks pass through. Better = higher score, or with `smallest` the smaller box: of two
    results on one person the bigger box has landmarks out on someone else (an ROI drifting off a person
    hidden behind onto the one in front mixes both), and pose flags saturate at 1 on both.

    Items with a follower id and `shift` (how far that follower's landmarks moved since its last frame, in
    half body sizes; inf for a new one) hand the id on: the kept result carries the follower that moved
    least, since of two followers now on one person the one that stayed is on its own person and the one
    that jumped came off someone else (who is now hidden: their follower ends here, not their identity's
    box going to them)."""
    kept: list[tuple] = []
    area = [(f[0][2] - f[0][0]) * (f[0][3] - f[0][1]) for f in found]
    for i in np.argsort(area if smallest else [-f[1] for f in found], kind="stable"):
        f = found[i]
        if f[3] is not None:
            half = 0.5 * max(f[0][3] - f[0][1], f[0][2] - f[0][0])
            twin = next((k for k, g in enumerate(kept)
                         if g[3] is not None and np.median(np.linalg.norm(f[3] - g[3], axis=1)) < same_pose * half), None)
            if twin is not None:
                if len(f) > 5 and f[5] < kept[twin][5]:
                    kept[twin] = (*kept[twin][:4], *f[4:])
                continue
        kept.append(f)
    return kept


@dataclass(frozen=True)
class SearchConfig:
    """What `PersonSearch` runs per frame (all sizes relative to the frame, scores are probabilities)."""

    tile_fracs: tuple[float, ...] = ()   # tile sides / min(H, W); () = whole frame only (the old behaviour)
    tile_overlap: float = 0.25
    track: bool = False                  # carry ROIs to the next frame and run the landmark model there
    verify: bool = True                  # with track: a newly detected person's box comes from the landmark model
    new_cover: float = 1.0               # with verify: a new box this much inside a bigger followed one is dropped
    same_pose: float = 1.0               # landmark sets closer than this x half the body size are one person (1 = off)
    keep_score: float = 0.5              # landmark pose flag needed to keep following a person
    min_score: float = 0.5               # detector score
    nms_iou: float = 0.3                 # boxes of one person from several tiles/ROIs overlap more than this
    nms_cover: float = 1.0               # or one lies inside the other by more than this share (1.0 = off)
    max_tracks: int = 20                 # ROIs followed per frame (cost is ~one landmark run each)
    box_pad: float | None = None         # landmark results' box: landmark extent + pad x size (None: alignment circle)
    tiles_every: int = 1                 # run the tiles on every k-th frame only (whole frame: every frame)
    jump: float = np.inf                 # a follower whose landmarks move more than this x half the body in one
    # frame has left its person (for someone it overlaps): its result starts a new follower, marked `drifted`
    motion_every: int = 0                # motion candidates (models/maths/motion_proposals.py) on every k-th frame (0 = off)
    motion_gap: int = 5                  # frames between the two frames they difference
    movenet_every: int = 0               # a whole-body detector's boxes (PersonSearch.movenet) on every k-th frame (0 = off)
    movenet_size: int = 256              # its input's longer side (a multiple of 32)
    movenet_score: float = 0.2           # its person score needed for a box to be looked at


@dataclass
class PersonSearch:
    """People boxes frame after frame; holds the ROIs carried from the previous frame."""

    model: BlazePose
    cfg: SearchConfig
    rois: list[Roi] = field(default_factory=list)
    frame: int = 0                       # frames seen by this search (the tile schedule counts from 0)
    # per ROI carried: the follower chain it continues and that chain's last landmarks (33, 2) px or None
    chains: list[tuple[int, np.ndarray | None]] = field(default_factory=list)
    followers: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # last call's rows' follower ids
    drifted: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))    # ... and the follower each jumped off (-1)
    n_chains: int = 0                    # follower ids given so far (ids are 0, 1, ... within this search)
    motion: MotionProposer | None = None  # with cfg.motion_every: what moved, as places for the landmark model to look
    last: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # last call's boxes (people already found)
    # with cfg.movenet_every: (rgb, size, min_score) -> ((K, 5) boxes, ...), e.g. models/runners/movenet.py's
    # MoveNetMultiPose (given, not loaded here: it is a separate weight file, and movenet.py imports this module)
    movenet: Callable[..., tuple] | None = None

    def __post_init__(self) -> None:
        if self.cfg.motion_every and self.motion is None:
            self.motion = MotionProposer(MotionConfig(gap=self.cfg.motion_gap), self.cfg.motion_every)
        if self.cfg.movenet_every and self.movenet is None:
            raise ValueError("SearchConfig.movenet_every needs PersonSearch(movenet=...): a whole-body detector")

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """(K, 5) [x1, y1, x2, y2, score] image pixels for one (H, W, 3) uint8 RGB frame, best first.
        `self.followers` (K,) then says which follower chain gave each row (-1 without tracking): a chain
        is one person followed by the landmark model from frame to frame, a new id where one is found."""
        h, w = rgb.shape[:2]
        found = ([f for f in (self._follow(rgb, roi, *c) for roi, c in zip(self.rois, self.chains)) if f]
                 if self.cfg.track else [])
        n_followed = len(found)
        every = self.frame % self.cfg.tiles_every == 0
        self.frame += 1
        for roi in [None, *(tile_rois(w, h, self.cfg.tile_fracs, self.cfg.tile_overlap) if every else [])]:
            for d in self.model.detect(rgb, roi):
                if d.score >= self.cfg.min_score:
                    found.append((body_box(d.keypoints[0], d.keypoints[1]), d.score,
                                  roi_from_alignment(d.keypoints[0], d.keypoints[1]), None, -1, np.inf, -1))
        if self.motion is not None:
            # a moving blob nobody was found in: a new person for the landmark model to verify below, as a
            # detector box would be (the face-based detector never finds someone walking away from the camera)
            for b in self.motion(rgb, self.last):
                found.append((b.astype(np.float32), 0.5, roi_from_box(*b), None, -1, np.inf, -1))
        if self.cfg.movenet_every and (self.frame - 1) % self.cfg.movenet_every == 0:
            # a whole-body detector also finds people turned away (no face): each box is a person for the
            # landmark model to verify below (NMS first: one already followed is not looked at twice)
            for b in self.movenet(rgb, self.cfg.movenet_size, self.cfg.movenet_score)[0]:
                found.append((b[:4].astype(np.float32), 0.5, roi_from_box(*b[:4]), None, -1, np.inf, -1))
        if self.cfg.track and self.cfg.verify:
            # a new person (no followed box takes it) gets the landmark model's box now: the detector's
            # box of a person cut by a tile edge or half hidden is often a part of the body, which a
            # plain NMS keeps beside the whole-body box of the same person
            keep = self._merge(found)
            followed = [found[i] for i in keep if i < n_followed]
            new = [self._follow(rgb, found[i][2]) for i in keep if i >= n_followed]
            # a new box lying inside a followed one is a part of that person found again; two followed
            # boxes are never merged this way (people crossing each other stay two)
            inside = [inside_share(f[0], [g[0] for g in followed]) if f else 1.0 for f in new]
            found = followed + [f for f, c in zip(new, inside) if f and c <= self.cfg.new_cover]
        if self.cfg.same_pose < 1:
            found = same_person_once(found, self.cfg.same_pose, self.cfg.box_pad is not None)
        if not found:
            self.rois, self.chains = [], []
            self.followers = self.drifted = np.zeros(0, np.int64)
            self.last = np.zeros((0, 4))
            return np.zeros((0, 5), np.float32)
        keep = self._merge(found)
        ids = [self._chain_id(found[i]) for i in keep]
        self.rois = [found[i][2] for i in keep[: self.cfg.max_tracks]]
        self.chains = [(c, found[i][3]) for i, c in zip(keep[: self.cfg.max_tracks], ids)]
        self.followers = np.array(ids if self.cfg.track else [-1] * len(keep), np.int64)
        self.drifted = np.array([found[i][6] if len(found[i]) > 6 else -1 for i in keep], np.int64)
        out = np.array([[*found[i][0], found[i][1]] for i in keep], np.float32).reshape(-1, 5)
        self.last = out[:, :4]
        return out

    def _chain_id(self, f: tuple) -> int:
        """The follower id of a kept result: its chain's, or a new one (a person found this frame)."""
        if len(f) > 4 and f[4] >= 0:
            return int(f[4])
        self.n_chains += 1
        return self.n_chains - 1

    def _follow(self, rgb: np.ndarray, roi: Roi, chain: int = -1, last: np.ndarray | None = None) -> tuple | None:
        """The landmark model on `roi`: (box, pose flag, next frame's ROI, (33, 2) landmarks px, follower id,
        shift, drifted off), or None below keep_score. `chain` / `last`: the follower this ROI continues and
        its landmarks last frame; shift = their median move in half body sizes (inf for a new follower). A
        shift > cfg.jump is no person's own motion: the ROI slid onto someone else (two people crossing);
        the result is then a new follower (-1) that drifted off `chain`."""
        lm = self.model.landmarks(rgb, roi)
        if lm.pose_score < self.cfg.keep_score:
            return None
        box = (body_box(lm.image[33, :2], lm.image[34, :2]) if self.cfg.box_pad is None
               else landmark_box(lm.image[:33, :2], self.cfg.box_pad))
        pts = lm.image[:33, :2]
        half = 0.5 * max(box[3] - box[1], box[2] - box[0], 1e-6)
        shift = np.inf if last is None else float(np.median(np.linalg.norm(pts - last, axis=1))) / half
        if shift > self.cfg.jump:
            return box, lm.pose_score, lm.next_roi(), pts, -1, np.inf, chain
        return box, lm.pose_score, lm.next_roi(), pts, chain, shift, -1

    def _merge(self, found: list[tuple]) -> np.ndarray:
        """Indices into `found` left by NMS, best first."""
        if not found:
            return np.zeros(0, np.int64)
        return nms(np.stack([f[0] for f in found]), np.array([f[1] for f in found]), self.cfg.nms_iou, self.cfg.nms_cover)
