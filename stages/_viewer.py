"""The report's interactive 3D view: every track's skeleton on a floor grid, three.js (set up from npm).

Data: the motion table's joints, absolute = reference-relative joints + the root translation, turned
into the Y-up export frame (metres; video2mesh.models.writers.animation.CAMERA_TO_YUP), rounded to
mm, every `stride`-th frame (the overlay video's). The floor grid lies at y = 0: world-grounded
output is drawn as it is; camera-space output (camera at the origin) is lifted so that the 2nd
percentile of all feet heights is 0 (said on the page). The view starts at the video camera.
Controls: orbit / zoom / pan (three's OrbitControls), play / pause, a frame slider, one checkbox per
track. With the overlay video on the page, the video is the clock: playing, pausing or seeking
either one moves the other. Checks for tests land in `document.body.dataset` (viewer, viewerFrame).
"""
from __future__ import annotations

import html
import json
from typing import Any

import numpy as np
import pandas as pd

from video2mesh.models.metrics import motion as mm
from video2mesh.models.writers import preview
from video2mesh.models.writers.animation import CAMERA_TO_YUP, SMPL_PARENTS
from video2mesh.pipeline.artifacts import stack
from video2mesh.pipeline.viewer_lib import BUNDLE, HOW

from ._overlay import COCO_EDGES

BUNDLE_PATH = f"viewer/{BUNDLE}"


def edges(joints: mm.JointSet) -> list[tuple[int, int]]:
    """Bones (joint index pairs) to draw for a joint set."""
    if joints.n_joints == 17:
        return list(COCO_EDGES)
    return [(int(k), int(p)) for k, p in enumerate(SMPL_PARENTS) if p >= 0]


def viewer_data(motion: pd.DataFrame, joints: mm.JointSet, fps: float, n_frames: int, stride: int) -> dict[str, Any]:
    """JSON-able motion for the viewer (see the module docstring)."""
    tracks, feet_y = [], []
    for tid, g in motion.sort_values("frame").groupby("track_id", sort=True):
        g = g[g.frame.to_numpy() % stride == 0]
        if g.empty:
            continue
        j = stack(g.joints3d, joints.n_joints * 3, np.float64).reshape(len(g), joints.n_joints, 3)
        absolute = j - j[:, list(joints.reference)].mean(1, keepdims=True) + stack(g.trans, 3, np.float64)[:, None]
        yup = absolute @ CAMERA_TO_YUP.T
        feet_y.append(yup[:, list(joints.feet.values()), 1].ravel())
        b, gr, r = preview.track_color(int(tid))
        tracks.append({"id": int(tid), "color": f"#{r:02x}{gr:02x}{b:02x}", "frames": g.frame.astype(int).tolist(), "yup": yup})
    floor = float(np.percentile(np.concatenate(feet_y), 2)) if feet_y else 0.0
    centre = np.zeros(3)
    if tracks:
        allj = np.concatenate([t["yup"].reshape(-1, 3) for t in tracks])
        centre = np.median(allj, 0)
    for t in tracks:
        y = t.pop("yup")
        y[..., 1] -= floor
        t["joints_mm"] = np.round(y * 1000).astype(int).ravel().tolist()
    return {"fps": fps, "n_frames": n_frames, "stride": stride, "n_joints": joints.n_joints, "edges": edges(joints),
            "floor_shift_m": round(-floor, 4), "camera": [0.0, round(-floor, 3), 0.0],
            "target": [round(float(centre[0]), 3), round(float(centre[1] - floor), 3), round(float(centre[2]), 3)],
            "tracks": tracks}


def viewer_section(data: dict[str, Any], has_bundle: bool) -> str:
    """The viewer's HTML: container, controls, data, script; or one line saying how to add it."""
    if not has_bundle:
        return (f'<section id="view3d"><h2>3D view</h2><p class="viewer-missing">3D viewer not set up: {html.escape(HOW)}, '
                'then run the report again.</p></section>')
    boxes = "".join(f'<label style="color:{t["color"]}"><input type="checkbox" class="trk" value="{t["id"]}" checked> track {t["id"]}</label> '
                    for t in data["tracks"])
    shift = data["floor_shift_m"]
    note = (f"Floor grid at y = 0 (camera-space motion lifted by {shift:.2f} m to put the feet on it); "
            if abs(shift) > 1e-3 else "Floor grid at y = 0; ")
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return f"""<section id="view3d"><h2>3D view</h2>
<p class="note">{html.escape(note)}drag to orbit, wheel to zoom, right-drag to pan; 1 grid square = 0.5 m.</p>
<div id="viewer" style="width:100%;height:440px;border:1px solid #ccc"></div>
<div class="controls"><button id="v-play" type="button">play</button>
<input id="v-slider" type="range" min="0" max="{max(data['n_frames'] - 1, 0)}" step="{data['stride']}" value="0" style="width:50%">
<span id="v-frame">frame 1</span> {boxes}</div>
<script type="application/json" id="v2m-motion">{payload}</script>
<script src="{BUNDLE_PATH}"></script>
<script>{VIEWER_JS}</script></section>"""


VIEWER_JS = r"""
(function () {
  const ds = document.body.dataset;
  const data = JSON.parse(document.getElementById('v2m-motion').textContent);
  if (!window.V2M_THREE) { ds.viewer = 'missing'; return; }
  const { THREE, OrbitControls } = window.V2M_THREE;
  const box = document.getElementById('viewer');
  const W = box.clientWidth || 800, H = box.clientHeight || 420;
  const renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
  renderer.setPixelRatio(window.devicePixelRatio || 1);
  renderer.setSize(W, H);
  box.appendChild(renderer.domElement);
  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0xf2f2f2);
  scene.add(new THREE.HemisphereLight(0xffffff, 0x555555, 2.0));
  const sun = new THREE.DirectionalLight(0xffffff, 1.5); sun.position.set(3, 6, 4); scene.add(sun);
  const t = data.target;
  const grid = new THREE.GridHelper(20, 40, 0x777777, 0xbbbbbb);
  grid.position.set(Math.round(t[0]), 0, Math.round(t[2])); scene.add(grid);
  scene.add(new THREE.AxesHelper(0.5));
  const camera = new THREE.PerspectiveCamera(45, W / H, 0.05, 200);
  camera.position.set(data.camera[0], data.camera[1] + 1.2, data.camera[2] + 1.0);   // above and behind the video camera
  const controls = new OrbitControls(camera, renderer.domElement);
  controls.target.set(t[0], t[1], t[2]); controls.update();
  const sphere = new THREE.SphereGeometry(0.045, 12, 8), cyl = new THREE.CylinderGeometry(0.025, 0.025, 1, 8);
  const up = new THREE.Vector3(0, 1, 0), a = new THREE.Vector3(), b = new THREE.Vector3(), d = new THREE.Vector3();
  const tracks = data.tracks.map((tr) => {
    const mat = new THREE.MeshStandardMaterial({ color: tr.color, roughness: 0.6 });
    const group = new THREE.Group(); scene.add(group);
    const joints = Array.from({ length: data.n_joints }, () => { const m = new THREE.Mesh(sphere, mat); group.add(m); return m; });
    const bones = data.edges.map(() => { const m = new THREE.Mesh(cyl, mat); group.add(m); return m; });
    const index = new Map(tr.frames.map((f, i) => [f, i]));
    return { tr, group, joints, bones, index, on: true };
  });
  const J = data.n_joints, step = data.stride, fps = data.fps;
  let frame = 0, clock = 0, playing = false, last = null, drawn = 0;
  function pos(tr, i, j, v) { const o = (i * J + j) * 3; return v.set(tr.joints_mm[o] / 1000, tr.joints_mm[o + 1] / 1000, tr.joints_mm[o + 2] / 1000); }
  function show(f) {
    frame = Math.max(0, Math.min(data.n_frames - 1, Math.floor(f / step) * step));
    for (const k of tracks) {
      const i = k.index.get(frame);
      k.group.visible = k.on && i !== undefined;
      if (i === undefined) continue;
      k.joints.forEach((m, j) => pos(k.tr, i, j, m.position));
      data.edges.forEach(([p, q], e) => {
        pos(k.tr, i, p, a); pos(k.tr, i, q, b); d.subVectors(b, a);
        const m = k.bones[e]; const len = d.length();
        m.position.addVectors(a, b).multiplyScalar(0.5); m.scale.set(1, Math.max(len, 1e-4), 1);
        if (len > 1e-6) m.quaternion.setFromUnitVectors(up, d.normalize());
      });
    }
    document.getElementById('v-slider').value = frame;
    document.getElementById('v-frame').textContent = 'frame ' + (frame + 1);
    const cur = document.getElementById('timeline-cursor');
    if (cur) { const x = +cur.dataset.left + frame * +cur.dataset.sx; cur.setAttribute('x1', x); cur.setAttribute('x2', x); }
    ds.viewerFrame = frame;
  }
  const video = document.getElementById('overlay');
  const button = document.getElementById('v-play');
  function setPlaying(p) { playing = p; button.textContent = p ? 'pause' : 'play'; last = null; }
  button.addEventListener('click', () => {
    if (video) { if (video.paused) video.play(); else video.pause(); } else setPlaying(!playing);
  });
  if (video) {
    video.addEventListener('play', () => setPlaying(true));
    video.addEventListener('pause', () => { setPlaying(false); show(video.currentTime * fps); });
    video.addEventListener('seeked', () => show(video.currentTime * fps));
  }
  document.getElementById('v-slider').addEventListener('input', (ev) => {
    show(+ev.target.value); clock = frame;
    if (video) video.currentTime = (frame + 0.5) / fps;
  });
  document.querySelectorAll('input.trk').forEach((c) => c.addEventListener('change', () => {
    for (const k of tracks) if (String(k.tr.id) === c.value) k.on = c.checked;
    show(frame);
  }));
  function tick(now) {
    if (playing) {
      if (video) show(video.currentTime * fps);
      else {
        if (last !== null) clock += (now - last) / 1000 * fps;
        if (clock >= data.n_frames) clock = 0;
        if (Math.floor(clock / step) * step !== frame) show(clock);
        last = now;
      }
    }
    controls.update();
    renderer.render(scene, camera);
    if (++drawn === 2) ds.viewer = 'ok';
    requestAnimationFrame(tick);
  }
  const first = tracks.length ? Math.min(...tracks.map((k) => k.tr.frames[0])) : 0;
  show(first);
  requestAnimationFrame(tick);
})();
"""
