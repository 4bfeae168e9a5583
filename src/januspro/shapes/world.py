"""The shapes world: its vocabulary of objects, scenes as typed records, and seeded scene sampling.

A scene holds 1-4 flat objects (shape, colour, size) placed in distinct cells of a 3x3 grid with a little
jitter, so objects never overlap. Coordinates are fractions of the image side (resolution-free); bounding
boxes are ``(x0, y0, x1, y1)`` in the same units. Spatial relations follow GenEval's rule
(:func:`relations`), so captions, questions and the scorer agree on what "left of" means.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

SHAPES = ("circle", "square", "triangle", "diamond")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 50, 47),
    "green": (60, 170, 70),
    "blue": (40, 90, 220),
    "yellow": (235, 200, 40),
    "purple": (140, 70, 190),
    "cyan": (40, 190, 200),
}
BACKGROUND = (240, 240, 240)
SIZES: dict[str, float] = {"small": 0.16, "medium": 0.22, "large": 0.28}  # extent as a fraction of the side
GRID = 3  # cells per side
RELATIONS = ("left of", "right of", "above", "below")
POSITION_THRESHOLD = 0.1  # GenEval's margin: offsets shrink by 0.1 x (sum of the two extents)
NUMBERS = ("zero", "one", "two", "three", "four")


@dataclass(frozen=True)
class Obj:
    shape: str
    color: str
    size: str
    cx: float  # centre, fraction of width
    cy: float  # centre, fraction of height

    @property
    def extent(self) -> float:
        return SIZES[self.size]

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        h = self.extent / 2
        return (self.cx - h, self.cy - h, self.cx + h, self.cy + h)

    @property
    def name(self) -> str:
        """The object class with colour: "red circle" (the analogue of an ImageNet label)."""
        return f"{self.color} {self.shape}"


@dataclass(frozen=True)
class Scene:
    objects: tuple[Obj, ...]
    # rendering details of the noisy "real" variant (per-object colour offsets, clutter specks)
    color_jitter: tuple[tuple[int, int, int], ...] = ()
    clutter: tuple[tuple[float, float, float, str], ...] = ()  # (x, y, radius, colour)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> Scene:
        return cls(tuple(Obj(**o) for o in d["objects"]),
                   tuple(tuple(c) for c in d.get("color_jitter", ())),  # type: ignore[misc]
                   tuple(tuple(c) for c in d.get("clutter", ())))  # type: ignore[misc]

    @classmethod
    def from_json(cls, s: str) -> Scene:
        return cls.from_dict(json.loads(s))


def relations(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> set[str]:
    """Position of box ``a`` relative to box ``b`` with GenEval's rule (image y grows downwards)."""
    ca = np.array([(a[0] + a[2]) / 2, (a[1] + a[3]) / 2])
    cb = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
    dim = np.array([abs(a[2] - a[0]) + abs(b[2] - b[0]), abs(a[3] - a[1]) + abs(b[3] - b[1])])
    offset = ca - cb
    revised = np.maximum(np.abs(offset) - POSITION_THRESHOLD * dim, 0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    out = set()
    if dx < -0.5:
        out.add("left of")
    if dx > 0.5:
        out.add("right of")
    if dy < -0.5:
        out.add("above")
    if dy > 0.5:
        out.add("below")
    return out


@dataclass(frozen=True)
class HeldOut:
    """Combinations reserved for evaluation: they never occur in training data."""

    pairs: tuple[tuple[str, str], ...] = (("purple", "triangle"), ("cyan", "square"), ("yellow", "diamond"))
    triples: tuple[tuple[str, str, str], ...] = (("circle", "above", "triangle"), ("diamond", "left of", "square"))

    def pair_held(self, color: str, shape: str) -> bool:
        return (color, shape) in self.pairs

    def scene_is_clean(self, scene: Scene) -> bool:
        """True when the scene shows no held-out colour-shape pair and no held-out relation triple."""
        if any(self.pair_held(o.color, o.shape) for o in scene.objects):
            return False
        for a in scene.objects:
            for b in scene.objects:
                if a is b:
                    continue
                rels = relations(a.bbox, b.bbox)
                if any((a.shape, r, b.shape) in self.triples for r in rels):
                    return False
        return True


HELD_OUT = HeldOut()


@dataclass(frozen=True)
class SceneSpec:
    """Constraints for sampling a scene; ``None`` leaves a choice free."""

    n_objects: int | None = None
    objects: tuple[tuple[str | None, str | None], ...] = ()  # (colour, shape) required, in order
    sizes: tuple[str, ...] = tuple(SIZES)
    max_objects: int = 4
    jitter: float = 1.0  # fraction of the free room in a cell used for jitter


def _cell_centre(i: int) -> float:
    return (i + 0.5) / GRID


def sample_scene(rng: np.random.Generator, spec: SceneSpec = SceneSpec(), held_out: HeldOut | None = HELD_OUT,
                 max_tries: int = 200) -> Scene:
    """A random scene; with ``held_out`` set, never one that shows a held-out combination."""
    for _ in range(max_tries):
        n = spec.n_objects or int(rng.integers(1, spec.max_objects + 1))
        n = max(n, len(spec.objects))
        cells = rng.choice(GRID * GRID, size=n, replace=False)
        objs = []
        for k in range(n):
            want_c, want_s = spec.objects[k] if k < len(spec.objects) else (None, None)
            color = want_c or str(rng.choice(list(COLORS)))
            shape = want_s or str(rng.choice(SHAPES))
            size = str(rng.choice(list(spec.sizes)))
            room = max(0.0, (1.0 / GRID - SIZES[size]) / 2 - 0.02) * spec.jitter
            gx, gy = divmod(int(cells[k]), GRID)
            cx = _cell_centre(gx) + float(rng.uniform(-room, room))
            cy = _cell_centre(gy) + float(rng.uniform(-room, room))
            objs.append(Obj(shape, color, size, round(cx, 4), round(cy, 4)))
        scene = Scene(tuple(objs))
        if held_out is None or held_out.scene_is_clean(scene):
            return scene
    raise RuntimeError("could not sample a scene that avoids the held-out combinations; relax the constraints")


def plural(shape: str, n: int) -> str:
    return shape if n == 1 else shape + "s"


def number_word(n: int) -> str:
    return NUMBERS[n] if 0 <= n < len(NUMBERS) else str(n)
