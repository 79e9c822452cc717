"""Fast offscreen MuJoCo rendering and the pinhole projection that object boxes use.

Shadows and reflections dominate software-GL (EGL) render time: turning them off takes
96-px frames from ~4 to ~60 fps on this CPU (docs/simulators.md). MetaWorld's cameras look
at the table upside down, so every frame is rotated 180°; `project` applies the same rotation
so boxes and images agree.
"""

from __future__ import annotations

import atexit
import os
import weakref

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco


class CameraRenderer:
    """Renders named cameras of one MuJoCo model at `size` × `size` pixels.

    `hidden_groups` are geom groups left out of frames and segmentation, e.g. robosuite's collision
    meshes (group 0), which its own renderer hides and LIBERO's datasets never show.
    """

    def __init__(
        self, model: mujoco.MjModel, size: int, rotate: bool = True, hidden_groups: tuple[int, ...] = ()
    ) -> None:
        known = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
        self.cameras = tuple(known)
        # The offscreen buffer must hold the frame; grow it rather than fail on large sizes.
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, size)
        model.vis.global_.offheight = max(model.vis.global_.offheight, size)
        self.size, self.rotate, self.model = size, rotate, model
        self._renderer = mujoco.Renderer(model, size, size)
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self.option = mujoco.MjvOption()  # MuJoCo's defaults: geom groups 0–2 visible
        for group in hidden_groups:
            self.option.geomgroup[group] = 0
        _LIVE.add(self)
        if not _EXIT_HOOK:  # registered after mujoco.egl's own atexit hook, so it runs before it (LIFO)
            _EXIT_HOOK.append(atexit.register(_close_all))

    def check_cameras(self, cameras: tuple[str, ...]) -> None:
        unknown = [c for c in cameras if c not in self.cameras]
        if unknown:
            raise ValueError(f"cameras: unknown camera(s) {unknown}; this scene has {list(self.cameras)}")

    def render(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        """→ uint8 (size, size, 3), upright."""
        self._renderer.update_scene(data, camera=camera, scene_option=self.option)
        image = self._renderer.render()
        return np.ascontiguousarray(image[::-1, ::-1]) if self.rotate else image

    def segmentation(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        """→ int (size, size): geom id per pixel (-1 = background), same orientation as `render`."""
        self._renderer.enable_segmentation_rendering()
        try:
            self._renderer.update_scene(data, camera=camera, scene_option=self.option)
            seg = self._renderer.render()
        finally:
            self._renderer.disable_segmentation_rendering()
        ids = np.where(seg[..., 1] == mujoco.mjtObj.mjOBJ_GEOM, seg[..., 0], -1)
        return np.ascontiguousarray(ids[::-1, ::-1]) if self.rotate else ids

    def project(self, data: mujoco.MjData, camera: str, points: np.ndarray) -> np.ndarray:
        """World points (n, 3) → pixel coordinates (n, 2) as (x right, y down) in the rendered image.

        MuJoCo cameras look along their local -z with +y up; focal length f = (h/2) / tan(fovy/2).
        """
        cam = self.model.camera(camera).id
        rot = data.cam_xmat[cam].reshape(3, 3)  # columns: camera axes in world frame
        local = (np.asarray(points, dtype=np.float64) - data.cam_xpos[cam]) @ rot  # (n, 3)
        depth = np.maximum(-local[:, 2], 1e-9)
        f = 0.5 * self.size / np.tan(np.deg2rad(self.model.cam_fovy[cam]) / 2)
        x = f * local[:, 0] / depth + self.size / 2
        y = -f * local[:, 1] / depth + self.size / 2
        if self.rotate:
            x, y = self.size - x, self.size - y
        return np.stack([x, y], axis=1)

    def close(self) -> None:
        self._renderer.close()
        _LIVE.discard(self)


_LIVE: weakref.WeakSet[CameraRenderer] = weakref.WeakSet()
_EXIT_HOOK: list = []


def _close_all() -> None:
    """Free GL contexts of unclosed renderers while EGL is still initialised."""
    for renderer in list(_LIVE):
        renderer.close()


def cube_box(renderer: CameraRenderer, data: mujoco.MjData, camera: str, centre: np.ndarray, half: float):
    """Pixel box (x0, y0, x1, y1) of an axis-aligned cube of half-size `half` at `centre`, clipped to
    the image; None when it falls outside the frame."""
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * half + centre  # (8, 3)
    xy = renderer.project(data, camera, corners)  # (8, 2)
    x0, y0 = np.clip(xy.min(0), 0, renderer.size)
    x1, y1 = np.clip(xy.max(0), 0, renderer.size)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return (float(x0), float(y0), float(x1), float(y1))
