"""Anti-aliased rendering of shapes-world scenes with numpy (signed distances, one-pixel coverage ramp)."""

from __future__ import annotations

import numpy as np

from .world import BACKGROUND, COLORS, SHAPES, Obj, Scene

_SQRT3 = 3.0**0.5


def _sdf(shape: str, x: np.ndarray, y: np.ndarray, cx: float, cy: float, half: float) -> np.ndarray:
    """Signed distance (pixels, negative inside) of pixel centres (x, y) to a shape of half-extent ``half``."""
    dx, dy = x - cx, y - cy
    if shape == "circle":
        return np.hypot(dx, dy) - half
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - half * 0.9  # slightly smaller: equal visual weight
    if shape == "diamond":
        return (np.abs(dx) + np.abs(dy) - half) / 2**0.5
    if shape == "triangle":
        # upright isosceles triangle filling the box: apex at the top centre, base along the bottom
        # edges: bottom y = cy + half; sides through the apex (cx, cy - half) and base corners (cx +- half, cy + half)
        bottom = dy - half
        k = 1.0 / (1.0 + 4.0) ** 0.5  # normalise the side-edge normal (2, 1)
        side = (2 * np.abs(dx) - dy - half) * k
        return np.maximum(bottom, side)
    raise ValueError(f"unknown shape {shape!r}")


def render(scene: Scene, resolution: int = 64) -> np.ndarray:
    """[resolution, resolution, 3] uint8 image of the scene on the plain background."""
    img = np.empty((resolution, resolution, 3), dtype=np.float32)
    img[:] = BACKGROUND
    for x, y, r, color in scene.clutter:
        _paint_disc(img, x * resolution, y * resolution, r * resolution, COLORS[color])
    for k, o in enumerate(scene.objects):
        color = np.array(COLORS[o.color], dtype=np.float32)
        if k < len(scene.color_jitter):
            color = np.clip(color + np.array(scene.color_jitter[k], dtype=np.float32), 0, 255)
        _paint(img, o, resolution, color)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _blend(img: np.ndarray, cx: float, cy: float, half: float, sdf, color: np.ndarray) -> None:
    """Blend ``color`` into ``img`` with one-pixel anti-aliased coverage of the shape ``sdf`` describes."""
    res = img.shape[0]
    x0, x1 = max(0, int(cx - half - 2)), min(res, int(cx + half + 3))
    y0, y1 = max(0, int(cy - half - 2)), min(res, int(cy + half + 3))
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5  # pixel centres
    cover = np.clip(0.5 - sdf(xs, ys), 0.0, 1.0)[..., None]
    region = img[y0:y1, x0:x1]
    region *= 1.0 - cover
    region += cover * color


def _placement(o: Obj, res: int) -> tuple[float, float, float]:
    """(centre x, centre y, half extent) of the object in pixels at resolution ``res``."""
    return o.cx * res, o.cy * res, o.extent * res / 2


def _paint(img: np.ndarray, o: Obj, res: int, color: np.ndarray) -> None:
    cx, cy, half = _placement(o, res)
    _blend(img, cx, cy, half, lambda x, y: _sdf(o.shape, x, y, cx, cy, half), color)


def _paint_disc(img: np.ndarray, cx: float, cy: float, r: float, color: tuple[int, int, int]) -> None:
    _blend(img, cx, cy, r, lambda x, y: _sdf("circle", x, y, cx, cy, r), np.array(color, dtype=np.float32))



# ----------------------------------------------------------------------------- per-patch object labels
PATCH_CLASSES = 1 + len(SHAPES) * len(COLORS)  # background, then every (shape, colour) pair


# the same labels factored: background or a shape, and background or a colour (two classifiers side by side)
FACTORED_SHAPE_CLASSES = 1 + len(SHAPES)
FACTORED_PATCH_CLASSES = FACTORED_SHAPE_CLASSES + 1 + len(COLORS)


def patch_class(shape: str, color: str) -> int:
    """Index of the (shape, colour) class among the :data:`PATCH_CLASSES` (0 is the background)."""
    return 1 + SHAPES.index(shape) * len(COLORS) + list(COLORS).index(color)


def factor_patch_labels(labels):
    """(shape, colour) labels of :func:`patch_labels`' (shape, colour) classes, each 0 for the background and
    1 + the index into SHAPES / COLORS otherwise. Works on numpy arrays and torch tensors alike."""
    obj = labels > 0
    k = (labels - 1) * obj  # background -> 0, masked below
    return (k // len(COLORS) + 1) * obj, (k % len(COLORS) + 1) * obj


def patch_labels(scene: Scene, resolution: int, patch: int, min_pixels: int = 0) -> np.ndarray:
    """[g * g] int64 class of every ``patch`` x ``patch`` cell of the rendered scene (g = resolution // patch,
    row-major like a ViT's tokens): the (shape, colour) class of the object visible in at least ``min_pixels``
    of the cell's pixels (default: a quarter of the cell; pixels the shape covers fully, objects drawn later
    on top; of several, the one drawn last; an object that reaches that in no cell labels the cell(s) that
    show most of it), else 0 (background). Clutter specks count as background."""
    if resolution % patch:
        raise ValueError(f"patch {patch} does not divide the resolution {resolution}")
    g = resolution // patch
    owner = np.zeros((resolution, resolution), dtype=np.int64)
    for k, o in enumerate(scene.objects):
        cx, cy, half = _placement(o, resolution)
        x0, x1 = max(0, int(cx - half - 1)), min(resolution, int(cx + half + 2))
        y0, y1 = max(0, int(cy - half - 1)), min(resolution, int(cy + half + 2))
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
        region = owner[y0:y1, x0:x1]
        region[_sdf(o.shape, xs, ys, cx, cy, half) <= -0.5] = k + 1  # pixels the shape covers fully
    cells = owner.reshape(g, patch, g, patch).transpose(0, 2, 1, 3).reshape(g * g, patch * patch)
    need = min_pixels or max(1, patch * patch // 4)
    labels = np.zeros(g * g, dtype=np.int64)
    for k, o in enumerate(scene.objects):  # in drawing order: an object on top keeps the patches it shows in
        shown = (cells == k + 1).sum(1)
        keep = shown >= need
        if not keep.any() and shown.max() > 0:  # a small object split over patches keeps its largest share
            keep = shown == shown.max()
        labels[keep] = patch_class(o.shape, o.color)
    return labels
