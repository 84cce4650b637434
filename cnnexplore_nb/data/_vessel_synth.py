"""Private engine of :func:`cnnexplore_nb.data.synthetic_vessels`.

Vessel trees are grown as random walks with a smoothly varying heading (tortuosity),
radii taper along a branch and split at bifurcations (Murray's law), and every
centreline point is rendered as a disc: the mask is the exact union of the discs, the
image a bright tubular profile that is then blurred, lit unevenly and made noisy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class SynthParams:
    """Knobs derived from ``size`` and ``difficulty`` (see ``synthetic_vessels``)."""

    shape: tuple[int, int]
    vessel_fraction: float
    max_radius: float
    min_radius: float
    tortuosity: float
    branch_rate: float  # bifurcations per pixel of length
    contrast: float  # vessel amplitude above the background
    blur: float  # PSF sigma in pixels
    photons: float  # Poisson scale: higher = less shot noise
    read_noise: float  # Gaussian noise std
    background: float  # unevenness of the background (relative amplitude)
    defocused: int  # faint out-of-focus vessels drawn only in the image


def make_params(
    shape: tuple[int, int],
    *,
    vessel_fraction: float,
    difficulty: float,
    max_radius: float | None,
    tortuosity: float,
) -> SynthParams:
    d = difficulty
    side = min(shape)
    scale = (side / 256.0) ** 0.25  # radii grow sub-linearly with the field of view
    if max_radius is None:
        max_radius = max(2.0, (6.5 - 2.5 * d) * scale)
    min_radius = max(0.7, (1.4 - 0.5 * d) * min(1.0, scale))
    return SynthParams(
        shape=shape,
        vessel_fraction=vessel_fraction,
        max_radius=float(max_radius),
        min_radius=float(min(min_radius, 0.5 * max_radius)),
        tortuosity=tortuosity,
        branch_rate=1.0 / (18.0 * max_radius**0.5 * scale),
        contrast=0.85 - 0.45 * d,
        blur=0.6 + 1.4 * d,
        photons=500.0 * (1.0 - d) ** 2 + 40.0,
        read_noise=0.01 + 0.05 * d,
        background=0.25 + 0.5 * d,
        defocused=int(round(1 + 5 * d)),
    )


class _Canvas:
    """Accumulates discs into a mask (union) and an intensity layer (max of profiles)."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        self.mask = np.zeros(shape, dtype=bool)
        self.layer = np.zeros(shape, dtype=np.float32)
        self.covered = 0

    def draw(self, pts: np.ndarray, *, mark: bool = True) -> None:
        """Draw discs ``pts`` = rows (y, x, radius, intensity), vectorised per radius bin."""
        if len(pts) == 0:
            return
        h, w = self.shape
        bins = np.ceil(pts[:, 2]).astype(int)
        for reach in np.unique(bins):
            sel = pts[bins == reach]
            off = np.arange(-reach, reach + 1)
            oy, ox = np.meshgrid(off, off, indexing="ij")
            cy = np.floor(sel[:, 0]).astype(int)
            cx = np.floor(sel[:, 1]).astype(int)
            py = cy[:, None] + oy.ravel()[None, :]
            px = cx[:, None] + ox.ravel()[None, :]
            # pixel centres sit at integer + 0.5
            d2 = (py + 0.5 - sel[:, :1]) ** 2 + (px + 0.5 - sel[:, 1:2]) ** 2
            q2 = d2 / sel[:, 2:3] ** 2
            keep = (q2 <= 1.0) & (py >= 0) & (py < h) & (px >= 0) & (px < w)
            if not keep.any():
                continue
            flat = py[keep] * w + px[keep]
            # bright core, smooth fall-off: a filled tube seen in projection
            val = (sel[:, 3:4] * (0.3 + 0.7 * np.sqrt(np.clip(1.0 - q2, 0.0, 1.0))))[keep]
            np.maximum.at(self.layer.ravel(), flat, val.astype(np.float32))
            if mark:
                self.mask.ravel()[flat] = True
        if mark:
            self.covered = int(self.mask.sum())


def _walk(
    rng: np.random.Generator,
    p: SynthParams,
    start: tuple[float, float],
    theta: float,
    radius: float,
    intensity: float,
) -> tuple[np.ndarray, list[tuple[float, float, float, float, float]]]:
    """One branch: centreline points (y, x, r, I) and the child branches it spawns."""
    h, w = p.shape
    y, x = start
    omega = 0.0  # angular velocity: its random walk makes the heading vary smoothly
    taper = rng.uniform(0.002, 0.006)
    max_len = rng.uniform(0.6, 1.6) * max(h, w)
    n_max = int(max_len / 0.4) + 2
    # all random numbers of the branch drawn at once (the loop below is plain floats)
    turn = rng.normal(0.0, 0.05 * p.tortuosity, n_max)
    flicker = rng.normal(0.0, 0.01, n_max)
    split = rng.random(n_max)
    pts: list[tuple[float, float, float, float]] = []
    children: list[tuple[float, float, float, float, float]] = []
    length = 0.0
    for k in range(n_max):
        if radius < p.min_radius or length >= max_len:
            break
        if not (-radius <= y <= h + radius and -radius <= x <= w + radius):
            break
        pts.append((y, x, radius, intensity))
        step = min(max(0.5 * radius, 0.4), 1.5)
        root = math.sqrt(step)
        omega += turn[k] * root - 0.2 * omega * step
        omega = min(max(omega, -0.1), 0.1)
        theta += omega * step
        y += step * math.sin(theta)
        x += step * math.cos(theta)
        length += step
        radius *= math.exp(-taper * step)
        intensity *= math.exp(flicker[k] * root)
        if split[k] < p.branch_rate * step and length > 3 * radius:
            child_r = radius * rng.uniform(0.5, 0.9)
            if child_r >= p.min_radius:
                side = 1.0 if rng.random() < 0.5 else -1.0
                angle = theta + side * rng.uniform(0.6, 1.4)
                child_i = intensity * rng.uniform(0.8, 1.1)
                children.append((y, x, angle, child_r, child_i))
                radius = max((radius**3 - child_r**3) ** (1 / 3), 0.7 * radius)
                theta -= side * rng.uniform(0.1, 0.4)  # the parent swings away a little
    return np.asarray(pts, dtype=np.float64).reshape(-1, 4), children


def _root(rng: np.random.Generator, p: SynthParams) -> list[tuple[float, ...]]:
    """Start branches of a new tree: from a border pointing inwards, or a vessel through
    an inner point (two branches in opposite directions)."""
    h, w = p.shape
    radius = p.max_radius * rng.uniform(0.55, 1.0)
    intensity = rng.uniform(0.55, 1.0)
    if rng.random() < 0.7:
        side = int(rng.integers(4))
        t = rng.uniform(0.1, 0.9)
        starts = [(0.0, t * w, np.pi / 2), (float(h), t * w, -np.pi / 2)]
        starts += [(t * h, 0.0, 0.0), (t * h, float(w), np.pi)]
        y, x, theta = starts[side]
        return [(y, x, theta + rng.uniform(-0.6, 0.6), radius, intensity)]
    y, x = rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w
    theta = rng.uniform(0, 2 * np.pi)
    r2 = radius * rng.uniform(0.7, 1.0)
    return [(y, x, theta, radius, intensity), (y, x, theta + np.pi, r2, intensity)]


def _low_frequency(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth random field, std about 0.5: a coarse random grid of ``cells`` per side
    interpolated with Gaussian weights (two small matrix products)."""
    grid = rng.uniform(-1.0, 1.0, size=(cells + 2, cells + 2))

    def weights(n: int) -> np.ndarray:
        centres = (np.arange(cells + 2) - 0.5) * (n / cells)
        pix = np.arange(n) + 0.5
        wts = np.exp(-0.5 * ((pix[:, None] - centres[None, :]) / (0.6 * n / cells)) ** 2)
        return wts / wts.sum(axis=1, keepdims=True)

    field = weights(shape[0]) @ grid @ weights(shape[1]).T
    return field / (2.0 * field.std() + 1e-12)


def render_one(rng: np.random.Generator, p: SynthParams) -> tuple[np.ndarray, np.ndarray]:
    """Grow trees until the vessel fraction is reached, then make the image."""
    h, w = p.shape
    canvas = _Canvas(p.shape)
    target = p.vessel_fraction * h * w
    pending: list[tuple[float, ...]] = []
    budget = 400  # branches; guards against a target that cannot be reached
    tree_left = 0
    while canvas.covered < target and budget > 0:
        if not pending or tree_left <= 0:  # a new tree: keeps the vessels spread out
            pending = _root(rng, p)
            tree_left = int(rng.integers(4, 12))
        y, x, theta, radius, intensity = pending.pop(0)
        pts, children = _walk(rng, p, (y, x), theta, radius, intensity)
        canvas.draw(pts)
        pending.extend(children)
        budget -= 1
        tree_left -= 1
    mask = canvas.mask
    vessels = canvas.layer
    # faint out-of-focus vessels: visible in the image, absent from the label
    ghost = _Canvas(p.shape)
    for _ in range(p.defocused):
        for y, x, theta, radius, intensity in _root(rng, p):
            pts, _c = _walk(rng, p, (y, x), theta, radius * 1.3, 0.25 * intensity)
            ghost.draw(pts, mark=False)
    ghost_layer = ndimage.gaussian_filter(ghost.layer, 3.0 + 2.0 * p.blur)
    signal = ndimage.gaussian_filter(vessels, p.blur) if p.blur > 0 else vessels
    illumination = 1.0 + 0.5 * p.background * _low_frequency(rng, p.shape, 3)
    texture = 0.04 * p.background * _low_frequency(rng, p.shape, max(4, min(h, w) // 12))
    base = 0.12 + 0.08 * p.background * _low_frequency(rng, p.shape, 2)
    clean = illumination * (base + texture + p.contrast * (signal + ghost_layer))
    clean = np.clip(clean, 0.0, None)
    noisy = rng.poisson(clean * p.photons) / p.photons + rng.normal(0.0, p.read_noise, clean.shape)
    image = np.clip(noisy / 1.05, 0.0, 1.0).astype(np.float32)
    return image, mask.astype(np.uint8)
