"""An exact detector for the shapes world: reads objects (shape, colour, size, box) back from an image.

Each pixel is explained as a mix of the background and one palette colour (``bg + a * (colour - bg)``, the
model of an anti-aliased or blurred edge); it belongs to the colour whose mix fits best when the mix is at
least half colour (a 50% coverage threshold, which blur moves little). Same-colour pixels form 8-connected
components. Each component is then measured on its soft coverage (the mix share, which keeps what blur
spreads out): area, vertical skewness (an upright triangle is heavy at the bottom), and the fourth-order
moment ratio k = E[x^2 y^2] / (E[x^2] E[y^2]) about its centroid, which is 1 for an axis-aligned square,
2/3 for a disc and 0.4 for a diamond, and moves little under blur. Blobs that fit no shape are reported as
``unknown``, never forced into a class. Size comes from the area and the shape's area factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .world import BACKGROUND, COLORS, SIZES

_NAMES = list(COLORS)
_PALETTE = np.array([COLORS[c] for c in _NAMES] + [BACKGROUND], dtype=np.float32)  # [C+1, 3]
_BG = len(_NAMES)
_UNSURE = -1


@dataclass(frozen=True)
class Detection:
    shape: str  # a shape name or "unknown"
    color: str
    size: str
    bbox: tuple[float, float, float, float]  # fractions of the side, (x0, y0, x1, y1)
    area: float  # fraction of the image
    score: float  # confidence in [0, 1]

    @property
    def cx(self) -> float:
        return (self.bbox[0] + self.bbox[2]) / 2

    @property
    def cy(self) -> float:
        return (self.bbox[1] + self.bbox[3]) / 2

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"


@dataclass(frozen=True)
class DetectorConfig:
    max_residual: float = 60.0  # distance from the best bg-colour mix above which a pixel is unsure
    min_coverage: float = 0.5  # share of colour in the mix for a pixel to count as the object's
    min_area: float = 0.006  # components smaller than this fraction of the image are noise (specks)
    triangle_skew: float = -0.25  # vertical skewness below this: an upright triangle
    max_abs_skew: float = 0.25  # other shapes are symmetric
    diamond_k: float = 0.58  # k below: diamond; below circle_k: circle; up to max_k: square
    circle_k: float = 0.85
    min_k: float = 0.3
    max_k: float = 1.25
    max_aspect: float = 1.35  # ratio of the second moments along x and y (triangles are checked apart)


# area of each shape as a fraction of its extent squared (squares are drawn at 0.9 of the extent)
AREA_FACTOR = {"circle": np.pi / 4, "square": 0.81, "triangle": 0.5, "diamond": 0.5}


_COLOR_VECS = _PALETTE[:-1] - _PALETTE[-1]  # [C, 3]
_COLOR_NORM2 = (_COLOR_VECS**2).sum(-1)  # [C]


def _label_pixels(img: np.ndarray, cfg: DetectorConfig) -> tuple[np.ndarray, np.ndarray]:
    """Hard labels [H, W] (colour index, background or unsure) and each pixel's mix share [H, W, C] for
    its best-fitting colour (zero for the others)."""
    u = img.astype(np.float32) - _PALETTE[-1]  # [H, W, 3] offset from the background
    alpha = np.clip((u @ _COLOR_VECS.T) / _COLOR_NORM2, 0.0, 1.0)  # [H, W, C] best mix per colour
    resid = np.linalg.norm(u[:, :, None, :] - alpha[..., None] * _COLOR_VECS, axis=-1)  # [H, W, C]
    best = resid.argmin(-1)  # [H, W]
    a = np.take_along_axis(alpha, best[..., None], -1)[..., 0]
    r = np.take_along_axis(resid, best[..., None], -1)[..., 0]
    lab = np.where(a >= cfg.min_coverage, best, _BG)
    lab[r > cfg.max_residual] = _UNSURE
    # soft share of each pixel for its best-fitting colour only (a green edge also projects onto purple)
    soft = np.zeros_like(alpha)
    np.put_along_axis(soft, best[..., None], np.where(r <= cfg.max_residual, a, 0.0)[..., None], -1)
    return lab, soft


def _components(mask: np.ndarray) -> list[np.ndarray]:
    """8-connected components of a boolean mask, as arrays of (y, x) pixel coordinates."""
    h, w = mask.shape
    seen = np.zeros_like(mask)
    comps = []
    ys, xs = np.nonzero(mask)
    for y0, x0 in zip(ys.tolist(), xs.tolist(), strict=True):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        stack = [(y0, x0)]
        pix = []
        while stack:
            y, x = stack.pop()
            pix.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        comps.append(np.array(pix))
    return comps


def _classify(w: np.ndarray, cfg: DetectorConfig) -> tuple[str, float]:
    """(shape, confidence) of a soft mask ``w`` [h, w] (coverage weights)."""
    total = float(w.sum())
    ys, xs = np.mgrid[0:w.shape[0], 0:w.shape[1]].astype(np.float64)
    cx, cy = (w * xs).sum() / total, (w * ys).sum() / total
    dx, dy = xs - cx, ys - cy
    m20, m02 = (w * dx * dx).sum() / total, (w * dy * dy).sum() / total
    if m20 <= 0 or m02 <= 0:
        return "unknown", 0.0
    k = (w * dx * dx * dy * dy).sum() / total / (m20 * m02)
    skew = (w * dy**3).sum() / total / m02**1.5
    skew_x = (w * dx**3).sum() / total / m20**1.5
    aspect = m20 / m02
    if abs(skew_x) > cfg.max_abs_skew:
        return "unknown", 0.0
    if skew < cfg.triangle_skew:
        if 0.55 <= aspect <= 1.0:
            return "triangle", float(min(1.0, 0.5 + (cfg.triangle_skew - skew) / 0.5))
        return "unknown", 0.0
    if abs(skew) > cfg.max_abs_skew or not 1 / cfg.max_aspect <= aspect <= cfg.max_aspect:
        return "unknown", 0.0
    if not cfg.min_k <= k <= cfg.max_k:
        return "unknown", 0.0
    if k < cfg.diamond_k:
        return "diamond", float(min(1.0, 0.5 + (cfg.diamond_k - k) / 0.2))
    if k < cfg.circle_k:
        return "circle", float(min(1.0, 0.5 + min(k - cfg.diamond_k, cfg.circle_k - k) / 0.1))
    return "square", float(min(1.0, 0.5 + min(k - cfg.circle_k, cfg.max_k - k) / 0.15))


def _grow(owner: np.ndarray, radius: int) -> np.ndarray:
    """Give unowned pixels (-1) the owner of an owned pixel within ``radius`` (nearer rings first)."""
    out = owner.copy()
    h, w = owner.shape
    for r in range(1, radius + 1):
        ring = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if max(abs(dy), abs(dx)) == r]
        ring.sort(key=lambda d: d[0] ** 2 + d[1] ** 2)
        src = out.copy()
        for dy, dx in ring:
            shifted = np.full_like(src, -1)
            shifted[max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)] = \
                src[max(0, -dy):h + min(0, -dy), max(0, -dx):w + min(0, -dx)]
            take = (out == -1) & (shifted != -1)
            out[take] = shifted[take]
    return out


def _size_name(extent: float) -> str:
    names = list(SIZES)
    values = np.log(np.array([SIZES[n] for n in names]))
    return names[int(np.abs(values - np.log(max(extent, 1e-6))).argmin())]


def detect(image: np.ndarray | Image.Image, cfg: DetectorConfig = DetectorConfig()) -> list[Detection]:
    """Objects in an RGB image ([H, W, 3] uint8 array or PIL image), largest first."""
    img = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    res_y, res_x = img.shape[:2]
    lab, alpha = _label_pixels(img, cfg)
    comps = [(ci, pix) for ci in range(len(_NAMES)) for pix in _components(lab == ci)]
    owner = np.full(lab.shape, -1, dtype=np.int64)  # which component holds each pixel
    for j, (_, pix) in enumerate(comps):
        owner[pix[:, 0], pix[:, 1]] = j
    owner = _grow(owner, 2)  # soft edge pixels go to the nearest component
    out: list[Detection] = []
    min_px = cfg.min_area * res_x * res_y
    for j, (ci, pix) in enumerate(comps):
        if len(pix) < min_px:
            continue
        (y0, x0), (y1, x1) = pix.min(0), pix.max(0)
        ya, yb, xa, xb = max(0, y0 - 2), min(res_y, y1 + 3), max(0, x0 - 2), min(res_x, x1 + 3)
        w = np.where(owner[ya:yb, xa:xb] == j, alpha[ya:yb, xa:xb, ci], 0.0)
        w = np.where(w >= 0.1, w, 0.0)
        shape, score = _classify(w, cfg)
        area = float(w.sum()) / (res_x * res_y)
        extent = (area / AREA_FACTOR[shape]) ** 0.5 if shape in AREA_FACTOR else (y1 - y0 + 1) / res_y
        bbox = (x0 / res_x, y0 / res_y, (x1 + 1) / res_x, (y1 + 1) / res_y)
        out.append(Detection(shape, _NAMES[ci], _size_name(extent), bbox, area, score))
    out.sort(key=lambda d: -d.area)
    return out
