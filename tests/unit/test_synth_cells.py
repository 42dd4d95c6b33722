"""The cell-structure phantom families: dendrites with spines, protein clusters, ER networks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from neurodecon.synth import phantom

VOX = (0.15, 0.05, 0.05)  # a Nyquist-sampled NA 1.4 confocal: u = 0.05 µm, the biological sizes
SHAPE = (32, 96, 96)


@pytest.mark.parametrize("name", ["dendrites", "clusters", "er"])
def test_cell_phantoms_are_in_unit_range_reproducible_and_scale_with_the_unit(name):
    a = phantom(name, shape=SHAPE, voxel_size_um=VOX, seed=5)
    assert a.dtype == np.float32 and a.min() >= 0 and 0.2 < a.max() <= 1
    np.testing.assert_array_equal(a, phantom(name, shape=SHAPE, voxel_size_um=VOX, seed=5))
    assert not np.array_equal(a, phantom(name, shape=SHAPE, voxel_size_um=VOX, seed=6))
    # sized in units of the voxel: twice the voxel size draws the same volume, twice as large
    big = phantom(name, shape=SHAPE, voxel_size_um=tuple(2 * v for v in VOX), seed=5)
    assert np.mean(np.abs(big - a)) < 1e-3 * np.mean(a)


def test_dendrite_shafts_are_0_5_to_1_5_um_thick_and_carry_spines():
    plain = phantom("dendrites", shape=SHAPE, voxel_size_um=VOX, seed=0, dendrites_spines_per_um=0)
    spiny = phantom("dendrites", shape=SHAPE, voxel_size_um=VOX, seed=0)
    shaft = plain > 0.25
    # the thickest point of a shaft: radius 0.25–0.75 µm (+ half the soft edge)
    radius = ndi.distance_transform_edt(shaft, sampling=VOX).max()
    assert 0.25 <= radius <= 0.8
    # spines leave the shaft: thin necks 0.5–1.5 µm long ending in heads up to 0.8 µm across
    spines = (spiny > 0.25) & ~shaft
    assert spines.sum() > 200
    reach = ndi.distance_transform_edt(~shaft, sampling=VOX)[spines]
    assert 0.3 < np.median(reach) < 1.8 and reach.max() < 2.6
    # the same shafts: the spines only add
    np.testing.assert_array_less(plain - 1e-6, spiny)


def test_clusters_are_dense_groups_of_sub_resolution_puncta():
    spread = phantom(
        "clusters",
        shape=SHAPE,
        voxel_size_um=VOX,
        seed=0,
        clusters_per_cluster=0,
        clusters_cluster_radius_um=1.5,
    )
    lab, n = ndi.label(spread > 0, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(lab.ravel())[1:]
    assert n > 20 and np.percentile(sizes, 90) <= 8  # each punctum: a voxel or two
    dense = phantom("clusters", shape=SHAPE, voxel_size_um=VOX, seed=0)
    puncta = ndi.label(dense > 0, structure=np.ones((3, 3, 3)))[1]
    ball = ndi.generate_binary_structure(3, 1)
    groups = ndi.label(ndi.binary_dilation(dense > 0, ball, iterations=2))[1]
    assert puncta >= 3 * groups  # several puncta per cluster
    # brightness varies between puncta (log-normal × the cluster's level)
    lab, n = ndi.label(dense > 0)
    values = np.asarray(ndi.maximum(dense, lab, np.arange(1, n + 1)))
    assert np.std(values) > 0.2 * np.mean(values)


def test_er_is_one_network_of_thin_tubules_with_sheets():
    tubules = phantom("er", shape=SHAPE, voxel_size_um=VOX, seed=0, er_sheet_spacing=1e9)
    lab, n = ndi.label(tubules > 0, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(lab.ravel())[1:]
    assert sizes.max() > 0.8 * sizes.sum()  # one connected network
    thick = ndi.distance_transform_edt(tubules > 0.25, sampling=VOX)
    assert thick.max() <= 0.12  # tubules about 0.1 µm wide (radius ≤ 1.2 u + the edge)
    sheets = phantom("er", shape=SHAPE, voxel_size_um=VOX, seed=0, er_sheet_spacing=60)
    patch = (sheets > 0.25) & ~(tubules > 0.25)
    assert patch.sum() > 1000
    # a patch is flat: its thinnest principal extent is far below its widest
    lab, _ = ndi.label(patch)
    biggest = np.argmax(np.bincount(lab.ravel())[1:]) + 1
    pts = np.argwhere(lab == biggest) * np.asarray(VOX)
    spread = np.sqrt(np.linalg.eigvalsh(np.cov(pts.T)))
    assert spread[0] < 0.1 * spread[2] and spread[2] > 0.25  # µm
