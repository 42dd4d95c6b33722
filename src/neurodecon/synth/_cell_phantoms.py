"""Phantom families after the cell structures the NeuroDecon paper deconvolves (§2.3–2.5).

``dendrites``
    Branching dendrite shafts 0.5–1.5 µm thick (smooth persistent random walks) carrying spines:
    thin necks 0.1–0.2 µm wide and 0.5–1.5 µm long ending in heads 0.3–0.8 µm across.
``clusters``
    Protein clusters: dense groups (0.2–0.5 µm radius) of sub-resolution puncta of varied
    (log-normal) brightness.
``er``
    Endoplasmic reticulum: a 3-D network of thin tubules (about 0.1 µm wide, three-way junctions
    about 1 µm apart, gently curved) with flat sheet-like patches 1–3 µm across.

Sizes are multiples of the feature unit ``u`` (the lateral voxel size unless ``feature_um`` is
given), chosen so that at ``u = 0.05 µm`` — a Nyquist-sampled NA 1.4 confocal — they are the
biological sizes above; family options in µm fix them (``dendrites_radius_um=(0.3, 0.6)``).
"""

from __future__ import annotations

import numpy as np

from ._placement import count, directions, perturb, size_range, uniform_points, volume_um3
from ._render import _box, draw_capsules, draw_spheres

__all__ = ["dendrites", "clusters", "er"]


def _orthogonal(d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return a random unit vector orthogonal to the unit vector ``d``."""
    v = rng.normal(size=3)
    v -= (v @ d) * d
    n = float(np.linalg.norm(v))
    if n > 1e-9:
        return v / n
    return _orthogonal(d, rng)  # v fell along d (probability zero): draw again


def dendrites(
    vol,
    vox,
    u,
    rng,
    density,
    radius_um=None,
    spacing=60.0,
    branch_probability=0.03,
    spines_per_um=None,
    neck_radius_um=None,
    neck_length_um=None,
    head_radius_um=None,
):
    """Dendrite shafts with spines (family ``dendrites``).

    Shafts: radius 5–15 u (0.25–0.75 µm at u = 0.05 µm), one per ``spacing`` u squared of
    cross-section (5–13 % of the volume), smooth random walks through the volume in both
    directions, radius varying ±10 % along them, branching with ``branch_probability`` per step
    (the branch 0.7× as thick). Spines: ``spines_per_um`` per µm of shaft (default 1.5 per
    ``20 u``), each a neck of radius 1–2 u and length 10–30 u (a fifth of them stubby, ×0.3)
    leaving the surface perpendicular to the shaft, ending in a head of radius 3–8 u, brighter
    than the shaft by ×0.8–1.3.
    """
    ext = np.asarray(vol.shape, np.float64) * np.asarray(vox, np.float64)
    r_lo, r_hi = size_range(radius_um, u, (5.0, 15.0))
    span = float(np.cbrt(volume_um3(vol.shape, vox)))
    n = max(1, count(density * volume_um3(vol.shape, vox) / (spacing * u) ** 2 / span, rng))
    per_um = spines_per_um if spines_per_um is not None else 1.5 / (20.0 * u)
    neck = size_range(neck_radius_um, u, (1.0, 2.0))
    length = size_range(neck_length_um, u, (10.0, 30.0))
    head = size_range(head_radius_um, u, (3.0, 8.0))
    shafts = []
    for root, d0 in zip(uniform_points(n, vol.shape, vox, rng), directions(n, rng), strict=True):
        r0, val = float(rng.uniform(r_lo, r_hi)), float(rng.uniform(0.5, 0.8))
        walks = [(root, d0, r0), (root, -d0, r0)]
        while walks:
            p, d, r = walks.pop()
            step = max(2.0 * r, 4.0 * u)
            for _ in range(int(3 * span / step) + 1):
                q = p + step * np.asarray(d)
                rr = r * float(rng.uniform(0.9, 1.1))
                shafts.append((p, q, rr, val))
                p = q
                d = np.asarray(perturb(d, rng.normal(size=3), 0.15))
                if np.any(p < -2 * r) or np.any(p > ext + 2 * r):
                    break
                if rng.random() < branch_probability and len(shafts) < 5000:
                    walks.append((p, np.asarray(perturb(d, rng.normal(size=3), 1.5)), 0.7 * r))
    _draw_shafts(vol, vox, u, shafts)
    _draw_spines(vol, vox, u, rng, shafts, per_um, neck, length, head)


def _draw_shafts(vol, vox, u, shafts) -> None:
    if shafts:
        a, b, r, v = (np.asarray(c) for c in zip(*shafts, strict=True))
        draw_capsules(vol, vox, a.astype(np.float32), b.astype(np.float32), r, v, edge_um=u)


def _draw_spines(vol, vox, u, rng, shafts, per_um, neck, length, head) -> None:
    starts, ends, radii, values, centres, head_r, head_v = [], [], [], [], [], [], []
    for a, b, r, val in shafts:
        seg = float(np.linalg.norm(b - a))
        if seg <= 0:
            continue
        axis = (b - a) / seg
        for _ in range(int(rng.poisson(per_um * seg))):
            w = _orthogonal(axis, rng)
            base = a + rng.uniform(0.0, seg) * axis + 0.9 * r * w
            ln = float(rng.uniform(*length)) * (0.3 if rng.random() < 0.2 else 1.0)
            hr = float(rng.uniform(*head))
            tip = base + ln * w
            starts.append(base)
            ends.append(tip)
            radii.append(float(rng.uniform(*neck)))
            values.append(val)
            centres.append(tip + 0.7 * hr * w)
            head_r.append(hr)
            head_v.append(min(1.0, val * float(rng.uniform(0.8, 1.3))))
    if starts:
        s, e = np.asarray(starts, np.float32), np.asarray(ends, np.float32)
        draw_capsules(vol, vox, s, e, radii, values, edge_um=u)
        draw_spheres(vol, vox, np.asarray(centres), np.asarray(head_r), np.asarray(head_v))


def clusters(
    vol,
    vox,
    u,
    rng,
    density,
    cluster_radius_um=None,
    punctum_radius_um=None,
    per_cluster=20.0,
    spacing=40.0,
):
    """Protein clusters: dense groups of sub-resolution puncta (family ``clusters``).

    One cluster per ``(spacing · u)³``; each has a radius 4–10 u (0.2–0.5 µm at u = 0.05 µm) and
    3 + Poisson(``per_cluster``) puncta placed with a Gaussian of σ = half that radius about its
    centre. A punctum is a sphere of radius 0.4–0.8 u (below the voxel: its partial-volume value
    carries its flux) whose brightness is the cluster's (0.3–1) times a log-normal factor
    (σ 0.5), capped at 1.
    """
    c_lo, c_hi = size_range(cluster_radius_um, u, (4.0, 10.0))
    p_lo, p_hi = size_range(punctum_radius_um, u, (0.4, 0.8))
    n = max(1, count(density * volume_um3(vol.shape, vox) / (spacing * u) ** 3, rng))
    centres, radii, values = [], [], []
    for c in uniform_points(n, vol.shape, vox, rng):
        rc, level = float(rng.uniform(c_lo, c_hi)), float(rng.uniform(0.3, 1.0))
        k = 3 + int(rng.poisson(per_cluster))
        centres.append(c + rng.normal(0.0, rc / 2, size=(k, 3)))
        radii.append(rng.uniform(p_lo, p_hi, k))
        values.append(np.minimum(1.0, level * rng.lognormal(0.0, 0.5, k)))
    points, r, v = np.concatenate(centres), np.concatenate(radii), np.concatenate(values)
    draw_spheres(vol, vox, points, r, v, oversample=5)


def er(
    vol,
    vox,
    u,
    rng,
    density,
    tubule_radius_um=None,
    node_spacing=20.0,
    sheet_spacing=80.0,
    sheet_radius_um=None,
    sheet_thickness_um=None,
):
    """Endoplasmic reticulum: a tubule network with sheets (family ``er``).

    Nodes: one per ``(node_spacing · u)³`` (1 µm apart at u = 0.05 µm), each joined to its three
    nearest neighbours by a tubule of radius 0.8–1.2 u bent through a midpoint displaced by up
    to 15 % of its length. Sheets: one per ``(sheet_spacing · u)³``, flat discs of radius
    10–30 u and thickness 1.5–2.5 u, randomly oriented, centred on nodes. Intensities 0.5–1.
    """
    from scipy.spatial import cKDTree

    t_lo, t_hi = size_range(tubule_radius_um, u, (0.8, 1.2))
    vol_um3 = volume_um3(vol.shape, vox)
    n = max(4, count(density * vol_um3 / (node_spacing * u) ** 3, rng))
    nodes = uniform_points(n, vol.shape, vox, rng)
    _, nearest = cKDTree(nodes).query(nodes, k=4)
    edges = sorted({(min(i, j), max(i, j)) for i, row in enumerate(nearest) for j in row[1:]})
    starts, ends, radii, values = [], [], [], []
    for i, j in edges:
        a, b = nodes[i], nodes[j]
        ab = b - a
        ln = float(np.linalg.norm(ab))
        mid = (a + b) / 2 + _orthogonal(ab / max(ln, 1e-9), rng) * rng.uniform(0.0, 0.15) * ln
        r, v = float(rng.uniform(t_lo, t_hi)), float(rng.uniform(0.5, 1.0))
        starts += [a, mid]
        ends += [mid, b]
        radii += [r, r]
        values += [v, v]
    if starts:
        s, e = np.asarray(starts, np.float32), np.asarray(ends, np.float32)
        draw_capsules(vol, vox, s, e, radii, values, edge_um=u)
    n_sheets = count(density * vol_um3 / (sheet_spacing * u) ** 3, rng)
    s_lo, s_hi = size_range(sheet_radius_um, u, (10.0, 30.0))
    h_lo, h_hi = size_range(sheet_thickness_um, u, (1.5, 2.5))
    for k in rng.choice(n, size=min(n_sheets, n), replace=False):
        _draw_disc(
            vol,
            vox,
            nodes[k],
            directions(1, rng)[0],
            float(rng.uniform(s_lo, s_hi)),
            float(rng.uniform(h_lo, h_hi)) / 2,
            float(rng.uniform(0.5, 1.0)),
            edge_um=u,
        )


def _draw_disc(vol, vox, centre, normal, radius, half, value, *, edge_um) -> None:
    """Draw a flat disc (µm) with linear soft edges ``edge_um`` wide, merged by maximum.

    A disc thinner than the edge is drawn at half the edge with its value scaled by the
    thickness ratio (its flux per area kept), as thin tubes are.
    """
    w = float(edge_um)
    half_draw = max(half, w / 2)
    value *= half / half_draw
    reach = radius + w + half_draw
    got = _box(vol.shape, vox, centre - reach, centre + reach)
    if got is None:
        return
    sl, (z, y, x) = got
    pz, py, px = z[:, None, None] - centre[0], y[None, :, None] - centre[1], x[None, None, :]
    px = px - centre[2]
    h = pz * normal[0] + py * normal[1] + px * normal[2]
    rho = np.sqrt(np.maximum(pz**2 + py**2 + px**2 - h**2, 0.0))
    across = np.clip(0.5 + (half_draw - np.abs(h)) / w, 0.0, 1.0)
    inside = np.clip(0.5 + (radius - rho) / w, 0.0, 1.0)
    np.maximum(vol[sl], (value * across * inside).astype(np.float32), out=vol[sl])
