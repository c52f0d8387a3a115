"""Which stages make up each method: the one place that says so (flows, CLI, publishing and the
export manifests read it from here).

A method is named by what it delivers: its `outputs` map each deliverable (`export`: animation
files, `report`: the quality report) to the stage that makes it; everything upstream follows from
the stages' declared inputs. `settings` are stage defaults the method needs (under the user's own
settings). How `auto` picks a method is flows/methods.py's business.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Method:
    name: str
    label: str                                                     # one line for people: output, manifests
    outputs: dict[str, str]                                        # deliverable -> the stage that makes it
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # defaults under the user's settings
    setup: str = ""                                                # how to get its files (`v2m models list`)

    @property
    def targets(self) -> tuple[str, ...]:
        """The last stages of this method's path."""
        return tuple(self.outputs.values())


METHODS = {
    "smpl": Method("smpl", "SMPL, learned model (paper's method; VIBE-initialised)",
                   {"export": "export", "report": "report"},
                   setup="put them in the models folder or pass --weights NAME=PATH; README lists the sources"),
    "licence-free": Method("licence-free", "Anny body fitted to BlazePose keypoints (licence-free)",
                           {"export": "fit_export", "report": "fit_report"},
                           # a person this path finds is verified by the landmark model on every frame and
                           # fitted per frame, so a third of a second of them is someone (VIBE's 25 frames
                           # are its temporal model's window, kept for the smpl path); docs/crowd.md
                           # MoveNet MultiPose's boxes every 3rd frame find people turned away from the camera,
                           # whom BlazePose's face-anchored detector misses (docs/crowd.md "MoveNet MultiPose")
                           {"detect": {"backend": "blazepose", "movenet_every": 3, "movenet_size": 384, "movenet_score": 0.1},
                            "tracklets": {"min_len": 10, "min_len_s": 1 / 3}},
                           setup="run `v2m models setup-default` once"),
}
CHOICES = ("auto", *METHODS)
