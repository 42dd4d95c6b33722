"""Synthetic ground-truth volumes ("phantoms") in physical units, seeded and reproducible.

Families (combine several with a comma list; they are merged by maximum):

``ellipsoids``
    The NeuroDecon paper's spheres (§4.1.1): binary axis-aligned ellipsoids
    ``Σ ((x − c)/r)² ≤ 1`` with intensities from a uniform discrete set, radii from a uniform
    continuous law per axis, uniformly random centres.
``tubes``
    The paper's tubes (§4.1.2): straight tubes through a uniformly random point, direction from
    random angles (azimuth uniform, cosine of the polar angle uniform, i.e. isotropic), radius and
    intensity uniform continuous.
``sheets``
    Smooth curved membranes: a thin shell around the zero level set of a smooth random field.
``filaments``
    Tree-like branching filaments (persistent random walks that branch and taper), neurite-like.
``sponge``
    A sponge-like network: one multiply connected thin wall between two interpenetrating channel
    systems (the "sponge phase" of membranes; the zero level set of a random field with a short
    correlation length), about a fifth of the volume.
``puncta``
    Small spheres of varying size and brightness (vesicles, synaptic puncta), partial-volume edges.
``beads``
    Sub-resolution spheres of one diameter and brightness, as on a bead slide.
``dendrites``, ``clusters``, ``er``
    Dendrites with spines, protein clusters and endoplasmic-reticulum networks, after the cell
    structures of the paper's §2.3–2.5 (see :mod:`._cell_phantoms`).

Sizes default to multiples of the lateral voxel size (the *feature unit* ``u``) so that a
phantom looks alike at any sampling — microscope data are sampled near Nyquist, so ``u`` tracks
the PSF width. Everything is computed in µm, so anisotropic voxels give round objects. Pass
``feature_um`` to fix the unit, or family options such as ``tubes_radius_um=(0.1, 0.3)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import user_error
from ._cell_phantoms import clusters, dendrites, er
from ._placement import count as _count
from ._placement import directions as _directions
from ._placement import perturb as _perturb
from ._placement import size_range as _range
from ._placement import uniform_points as _uniform_points
from ._placement import volume_um3 as _volume_um3
from ._render import draw_capsules, draw_ellipsoids, draw_spheres, random_field, soft_level_set

__all__ = ["phantom", "PHANTOMS"]


# ---------------------------------------------------------------------------------------------
def _ellipsoids(vol, vox, u, rng, density, radius_um=None, levels=(0.25, 0.5, 0.75, 1.0), fill=0.3):
    r_lo, r_hi = _range(radius_um, u, (2.0, 8.0))
    mean_vol = 4.0 / 3.0 * np.pi * ((r_lo + r_hi) / 2) ** 3
    n = _count(density * fill * _volume_um3(vol.shape, vox) / mean_vol, rng)
    centres = _uniform_points(n, vol.shape, vox, rng)
    radii = rng.uniform(r_lo, r_hi, size=(n, 3))
    values = rng.choice(np.asarray(levels, dtype=np.float32), size=n)
    draw_ellipsoids(vol, vox, centres.astype(np.float32), radii.astype(np.float32), values)


def _clip_line(p, d, ext):
    """Parameter interval of the line p + t·d inside the box [0, ext] (slab method)."""
    t0, t1 = -np.inf, np.inf
    for i in range(3):
        if abs(d[i]) < 1e-12:
            if not 0 <= p[i] <= ext[i]:
                return None
            continue
        a, b = (0 - p[i]) / d[i], (ext[i] - p[i]) / d[i]
        t0, t1 = max(t0, min(a, b)), min(t1, max(a, b))
    return (t0, t1) if t1 > t0 else None


def _segments_along(p, d, t0, t1, step):
    n = max(1, int(np.ceil((t1 - t0) / step)))
    ts = np.linspace(t0, t1, n + 1)
    return p + ts[:-1, None] * d, p + ts[1:, None] * d


def _tubes(vol, vox, u, rng, density, radius_um=None, intensity=(0.3, 1.0), length_density=3e-3):
    ext = np.asarray(vol.shape) * np.asarray(vox)
    span = float(np.cbrt(_volume_um3(vol.shape, vox)))
    n = _count(density * length_density / u**2 * _volume_um3(vol.shape, vox) / span, rng)
    r_lo, r_hi = _range(radius_um, u, (0.5, 2.5))
    starts, ends, radii, values = [], [], [], []
    for p, d in zip(_uniform_points(n, vol.shape, vox, rng), _directions(n, rng), strict=True):
        r, val = rng.uniform(r_lo, r_hi), rng.uniform(*intensity)
        got = _clip_line(p, d, ext)
        if got is None:
            continue
        a, b = _segments_along(p, d, got[0], got[1], 16 * u)
        starts.append(a)
        ends.append(b)
        radii += [r] * len(a)
        values += [val] * len(a)
    if starts:
        draw_capsules(
            vol,
            vox,
            np.concatenate(starts).astype(np.float32),
            np.concatenate(ends).astype(np.float32),
            radii,
            values,
            edge_um=u,
        )


def _filaments(
    vol,
    vox,
    u,
    rng,
    density,
    radius_um=None,
    length_density=6e-3,
    tree_length=400.0,
    branch_probability=0.08,
):
    ext = [float(n * v) for n, v in zip(vol.shape, vox, strict=True)]
    r_lo, r_hi = _range(radius_um, u, (0.8, 2.0))
    per_tree = min(tree_length * u, 3.0 * float(np.cbrt(_volume_um3(vol.shape, vox))))
    n_trees = _count(density * length_density / u**2 * _volume_um3(vol.shape, vox) / per_tree, rng)
    step = 4.0 * u
    n_steps = max(1, int(per_tree / step))
    starts, ends, radii, values = [], [], [], []
    for root in _uniform_points(n_trees, vol.shape, vox, rng):
        val = float(rng.uniform(0.4, 1.0))
        noise = rng.normal(size=(n_steps, 3)).tolist()
        chance = rng.random(n_steps).tolist()
        turns = rng.normal(size=(n_steps, 3)).tolist()
        stack = [(root.tolist(), _directions(1, rng)[0].tolist(), float(rng.uniform(r_lo, r_hi)))]
        k = 0
        while stack and k < n_steps:
            p, d, r = stack.pop()
            while k < n_steps:
                d = _perturb(d, noise[k], 0.35)
                q = [p[i] + step * d[i] for i in range(3)]
                starts.append(p)
                ends.append(q)
                radii.append(r)
                values.append(val)
                p, k = q, k + 1
                if any(c < -2 * step or c > e + 2 * step for c, e in zip(p, ext, strict=True)):
                    break
                if chance[k - 1] < branch_probability:
                    stack.append((p, _perturb(d, turns[k - 1], 1.5), max(0.7 * r, 0.4 * u)))
    if starts:
        draw_capsules(
            vol,
            vox,
            np.asarray(starts, np.float32),
            np.asarray(ends, np.float32),
            radii,
            values,
            edge_um=u,
        )


def _modulation(shape, vox, u, rng, lo, hi):
    f = random_field(shape, vox, 12 * u, rng)
    return (lo + (hi - lo) * (0.5 + 0.5 * np.tanh(f))).astype(np.float32)


def _sheets(vol, vox, u, rng, density, correlation_um=None, thickness_um=None):
    corr = correlation_um if correlation_um is not None else 16 * u / max(density, 1e-3) ** (1 / 3)
    half = (thickness_um if thickness_um is not None else 1.5 * u) / 2
    dist = np.abs(soft_level_set(random_field(vol.shape, vox, corr, rng), vox, 0.0))
    shell = np.clip(0.5 + (half - dist) / u, 0.0, 1.0)
    np.maximum(vol, shell * _modulation(vol.shape, vox, u, rng, 0.4, 1.0), out=vol)


def _sponge(vol, vox, u, rng, density, correlation_um=None, thickness_um=None):
    # the "sponge phase" of membranes: one multiply connected random wall separating two
    # interpenetrating channel systems (the zero level set of a random field, short correlation)
    corr = correlation_um if correlation_um is not None else 6 * u / max(density, 1e-3) ** (1 / 3)
    half = (thickness_um if thickness_um is not None else 1.5 * u) / 2
    dist = np.abs(soft_level_set(random_field(vol.shape, vox, corr, rng), vox, 0.0))
    wall = np.clip(0.5 + (half - dist) / u, 0.0, 1.0)
    np.maximum(vol, wall * _modulation(vol.shape, vox, u, rng, 0.5, 1.0), out=vol)


def _puncta(vol, vox, u, rng, density, radius_um=None, intensity=(0.2, 1.0), spacing=12.0):
    r_lo, r_hi = _range(radius_um, u, (0.5, 1.5))
    n = _count(density * _volume_um3(vol.shape, vox) / (spacing * u) ** 3, rng)
    centres = _uniform_points(n, vol.shape, vox, rng)
    draw_spheres(vol, vox, centres, rng.uniform(r_lo, r_hi, n), rng.uniform(*intensity, n))


def _beads(vol, vox, u, rng, density, diameter_um=None, spacing=24.0):
    d = diameter_um if diameter_um is not None else 1.0 * u
    n = _count(density * _volume_um3(vol.shape, vox) / (spacing * u) ** 3, rng)
    centres = _uniform_points(n, vol.shape, vox, rng)
    draw_spheres(vol, vox, centres, np.full(n, d / 2), np.ones(n), oversample=5)


_FAMILIES: dict[str, Callable[..., None]] = {
    "ellipsoids": _ellipsoids,
    "tubes": _tubes,
    "sheets": _sheets,
    "filaments": _filaments,
    "sponge": _sponge,
    "puncta": _puncta,
    "beads": _beads,
    "dendrites": dendrites,
    "clusters": clusters,
    "er": er,
}
PHANTOMS = tuple(_FAMILIES)


def _parse_names(names: str | Sequence[str]) -> list[str]:
    if isinstance(names, str):
        names = [n for n in names.replace(" ", "").split(",") if n]
    names = list(names)
    bad = [n for n in names if n not in _FAMILIES]
    if not names or bad:
        raise user_error(
            f"unknown phantom {', '.join(bad) or '(none given)'}",
            fix=f"use one or more of {', '.join(PHANTOMS)}",
        )
    return names


def _family_options(names: list[str], kw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    import inspect

    opts: dict[str, dict[str, Any]] = {n: {} for n in names}
    for key, value in kw.items():
        family = next((n for n in PHANTOMS if key.startswith(n + "_")), None)
        if family is None:
            raise user_error(
                f"unknown phantom option {key!r}",
                fix="prefix family options with the family name, e.g. tubes_radius_um",
            )
        param = key[len(family) + 1 :]
        allowed = list(inspect.signature(_FAMILIES[family]).parameters)[5:]
        if param not in allowed:
            raise user_error(
                f"unknown option {key!r} for {family}",
                fix=f"use one of {', '.join(family + '_' + a for a in allowed)}",
            )
        if family in opts:
            opts[family][param] = value
    return opts


def phantom(
    names: str | Sequence[str],
    *,
    shape: Sequence[int],
    voxel_size_um: Sequence[float],
    seed: int = 0,
    margin_px: int | Sequence[int] = 0,
    density: float = 1.0,
    feature_um: float | None = None,
    **kw: Any,
) -> np.ndarray:
    """Generate a synthetic ground-truth volume.

    Parameters
    ----------
    names : str or list of str
        Families among ``ellipsoids, tubes, sheets, filaments, sponge, puncta, beads, dendrites,
        clusters, er``; a comma list or a list. Several families are merged by maximum.
    shape : (Z, Y, X) ints
        Output shape.
    voxel_size_um : (z, y, x) floats
        Voxel size in µm; objects are drawn in µm (round objects stay round).
    seed : int
        Random seed; the same arguments give the same volume. Each family draws from its own
        stream, so adding a family does not change the others.
    margin_px : int or (3,) ints
        Draw on a volume larger by this margin on each side and crop the centre, so that objects
        (and, after blurring, their light) enter from outside the field.
    density : float
        Multiplies every family's object count (or, for field-based families, their frequency).
    feature_um : float, optional
        The size unit ``u`` of the defaults; default the smaller lateral voxel size.
    **kw
        Family options, prefixed by the family: ``ellipsoids_radius_um=(lo, hi)``,
        ``ellipsoids_levels``, ``ellipsoids_fill``, ``tubes_radius_um``, ``tubes_intensity``,
        ``tubes_length_density``, ``filaments_radius_um``, ``filaments_branch_probability``,
        ``sheets_correlation_um``, ``sheets_thickness_um``, ``sponge_correlation_um``,
        ``sponge_thickness_um``, ``puncta_radius_um``, ``puncta_spacing``, ``beads_diameter_um``,
        ``beads_spacing``, ``dendrites_radius_um``, ``dendrites_spines_per_um``,
        ``dendrites_neck_length_um``, ``dendrites_head_radius_um``, ``clusters_cluster_radius_um``,
        ``clusters_per_cluster``, ``er_tubule_radius_um``, ``er_sheet_radius_um`` … (see the
        family functions).

    Returns
    -------
    (Z, Y, X) float32 ndarray
        Values in ``[0, 1]``.
    """
    families = _parse_names(names)
    shape_t = tuple(int(s) for s in shape)
    vox = tuple(float(v) for v in voxel_size_um)
    if len(shape_t) != 3 or min(shape_t) < 1:
        raise user_error(
            f"invalid phantom shape {tuple(shape)}", fix="give three positive sizes Z Y X"
        )
    if len(vox) != 3 or not all(np.isfinite(v) and v > 0 for v in vox):
        raise user_error(
            f"invalid voxel size {tuple(voxel_size_um)}",
            fix="give three positive numbers Z Y X in µm",
        )
    margin = (
        (int(margin_px),) * 3
        if isinstance(margin_px, (int, float, np.number))
        else tuple(int(m) for m in margin_px)
    )
    if len(margin) != 3 or min(margin) < 0:
        raise user_error(f"invalid margin {margin_px!r}", fix="give a margin ≥ 0 in voxels")
    if not density > 0:
        raise user_error(
            f"density {density} must be positive", fix="e.g. 0.5 for sparser, 2 for denser"
        )
    u = float(feature_um) if feature_um else min(vox[1:])
    opts = _family_options(families, kw)
    big = tuple(s + 2 * m for s, m in zip(shape_t, margin, strict=True))
    vol = np.zeros(big, dtype=np.float32)
    for name in families:
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), PHANTOMS.index(name)]))
        _FAMILIES[name](vol, vox, u, rng, float(density), **opts[name])
    crop = tuple(slice(m, m + s) for m, s in zip(margin, shape_t, strict=True))
    return np.ascontiguousarray(np.clip(vol[crop], 0.0, 1.0))
