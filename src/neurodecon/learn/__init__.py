"""Learned deconvolution: the NeuroDecon residual 3D U-Net (and RLN, 3D-RCAN, 3D m-rBCR).

Main entry points: ``train`` builds training pairs on the fly and writes a self-describing
model directory; ``load_model`` reads it back; ``predict`` deconvolves any volume size with
tiled inference; ``default_model_path`` is the small model shipped with the package;
``export_bioimageio`` writes a model as a bioimage.io package (its network:
``BioimageioNetwork``), which ``load_model`` reads back (``unpack_bioimageio``, cached under
``cache_dir()``); a package made elsewhere runs through ``predict_bioimageio``
(bioimageio.core).

Configuration: ``TrainConfig`` with its groups ``DataConfig``, ``NoiseConfig``,
``OptimConfig``, ``LossConfig``, ``PhysicsConfig``, ``NetConfig``, ``RunConfig`` and
``KernelConfig``; the choices ``Arch``, ``LRSchedule``, ``LossKind``, ``PhysicsInput``,
``PhysicsMethod``, ``BeadTarget``, ``Calibrate`` and ``PhotonsAt``; ``ConfigOption``
(``TrainConfig.options()``: each field's command-line flag). Training noise from the
microscope's stacks: ``calibrate_training_noise`` (a ``TrainingNoise``; its rules' constants
``BEAD_PEAK_FACTOR``, ``SAMPLE_PHOTON_SPREAD``, ``MAX_PHOTON_LEVELS``), resolved into
``NoiseConfig.resolved``.

The building blocks, public for tests, benchmarks and experiments:

- kernels: ``TrainingKernels`` (PSF / bead mode kernels from ``neurodecon.psf.resolve_psf``);
- data: ``training_volumes``, ``split_volumes``, ``build_pool``, ``Pool``, ``sample_batch``,
  ``add_noise``, ``allowed_flips``, ``center_convolve``, ``scale_to_unit``, ``robust_range``,
  ``Normalization``;
- physics input: ``physics_channel``, ``physics_function``, ``PHYSICS_PSF_FILE``; as
  ``predict`` computes it for a model: ``physics_options``, ``physics_kernel``,
  ``model_physics_channel``;
- loss: ``neurodecon_loss``, ``hessian_frobenius``, ``ssim3d``, ``fourier_loss``,
  ``training_loss`` (the configured one), ``rln_loss``, ``global_ssim``, ``debcr_loss``,
  ``fourier_l1``;
- precision: ``training_autocast``, ``precision_name``, ``cpu_has_fast_bf16``;
- loop: ``TrainState``, ``lr_factor``, ``train_step``, ``run_loop``, ``validation_metrics``;
- network: ``build_network`` (the one map from ``arch`` to a module; every network has
  ``multiple`` and ``in_channels``), ``count_parameters``, ``ResUNet``, ``ResBlock``; the seed
  papers' networks ``RLN``/``RLNConfig``, ``RCAN``/``RCANConfig``, ``DeBCR``/``DeBCRConfig``
  (``ARCH_CONFIGS``, ``arch_config``, ``for_voxel_size``, ``rln_parameter_count``,
  ``rcan_parameter_count``, ``haar_analysis``, ``haar_synthesis``, ``z_halving_for``);
- model directory: ``save_model``, ``model_card``, ``trained_for``, ``KERNEL_PSF_FILE``,
  ``CONFIG_NAME``;
  inference, the pieces of ``predict`` (which a blocked run reuses block by block):
  ``normalization_for``, ``network_input``, ``tiling`` / ``Tiling``, ``predict_normalized``,
  ``predict_tiled``; and the checks of an input against what the model was trained
  for: ``check_voxel_size``, ``check_levels``, ``trained_levels``.

Self-Net (isotropic restoration of an anisotropic stack, trained on that stack alone):
``isotropic``; its parts ``SelfNetConfig`` / ``SELFNET_PRESETS`` / ``selfnet_config``,
``SelfNetData`` (``anisotropy_ratio``, ``degrade_lateral``, ``z_interpolate``,
``isotropic_voxel_size``), ``SelfNetGenerator``, ``PatchDiscriminator``, ``ssim2d``,
``SelfNetTraining`` / ``train_selfnet``, ``SelfNetModel`` / ``load_selfnet`` (model folders with
``SELFNET_CONFIG_NAME``), ``restore_stack`` (in the stack's units, floored at its background) over
``restore_isotropic`` and ``fuse_directions``.
"""

from ._arch_debcr import (
    DeBCR,
    DeBCRConfig,
    debcr_loss,
    fourier_l1,
    haar_analysis,
    haar_synthesis,
    z_halving_for,
)
from ._arch_rcan import RCAN, RCANConfig, rcan_parameter_count
from ._arch_rln import RLN, RLNConfig, global_ssim, rln_loss, rln_parameter_count
from ._bioimageio import BioimageioNetwork, bioimageio_test_input, export_bioimageio
from ._bioimageio_foreign import is_foreign_package, predict_bioimageio
from ._bioimageio_import import cache_dir, is_bioimageio_package, unpack_bioimageio
from ._calibration import (
    BEAD_PEAK_FACTOR,
    MAX_PHOTON_LEVELS,
    SAMPLE_PHOTON_SPREAD,
    TrainingNoise,
    calibrate_training_noise,
)
from ._config import (
    Arch,
    BeadTarget,
    Calibrate,
    DataConfig,
    KernelConfig,
    LossConfig,
    LossKind,
    LRSchedule,
    NoiseConfig,
    OptimConfig,
    PhotonsAt,
    PhysicsConfig,
    PhysicsInput,
    PhysicsMethod,
    RunConfig,
    TrainConfig,
)
from ._data import (
    Pool,
    add_noise,
    allowed_flips,
    build_pool,
    center_convolve,
    sample_batch,
    scale_to_unit,
)
from ._kernels import KERNEL_PSF_FILE, TrainingKernels
from ._limits import LEVEL_CHECK_VOXELS, check_levels, check_voxel_size, trained_levels
from ._loop import TrainState, lr_factor, run_loop, train_step, validation_metrics
from ._loss import fourier_loss, hessian_frobenius, neurodecon_loss, ssim3d, training_loss
from ._model import (
    CONFIG_NAME,
    Model,
    default_model_path,
    load_model,
    model_card,
    save_model,
    trained_for,
)
from ._net import (
    ARCH_CONFIGS,
    NetConfig,
    ResBlock,
    ResUNet,
    arch_config,
    build_network,
    count_parameters,
    for_voxel_size,
)
from ._norm import Normalization, robust_range
from ._options import ConfigOption
from ._physics import PSF_FILE as PHYSICS_PSF_FILE
from ._physics import (
    model_physics_channel,
    physics_channel,
    physics_function,
    physics_kernel,
    physics_options,
)
from ._precision import cpu_has_fast_bf16, place_network, precision_name, training_autocast
from ._predict import (
    Tiling,
    augmentations,
    network_input,
    normalization_for,
    predict,
    predict_normalized,
    predict_tiled,
    predict_with_spread,
    tiling,
)
from ._selfnet import (
    SELFNET_CONFIG_NAME,
    SelfNetModel,
    fuse_directions,
    isotropic,
    load_selfnet,
    restore_isotropic,
    restore_stack,
    selfnet_config,
)
from ._selfnet_config import PRESETS as SELFNET_PRESETS
from ._selfnet_config import SelfNetConfig
from ._selfnet_data import (
    SelfNetData,
    anisotropy_ratio,
    degrade_lateral,
    isotropic_voxel_size,
    stack_normalization,
    z_interpolate,
)
from ._selfnet_nets import Generator as SelfNetGenerator
from ._selfnet_nets import PatchDiscriminator, ssim2d
from ._selfnet_train import SelfNetTraining, train_selfnet
from ._train import train
from ._volumes import split_volumes, training_volumes

__all__ = [
    "train",
    "load_model",
    "predict",
    "predict_with_spread",
    "augmentations",
    "default_model_path",
    "export_bioimageio",
    "BioimageioNetwork",
    "bioimageio_test_input",
    "is_bioimageio_package",
    "is_foreign_package",
    "predict_bioimageio",
    "unpack_bioimageio",
    "cache_dir",
    "Model",
    "TrainConfig",
    "DataConfig",
    "NoiseConfig",
    "OptimConfig",
    "LossConfig",
    "PhysicsConfig",
    "RunConfig",
    "KernelConfig",
    "NetConfig",
    "LossKind",
    "Arch",
    "LRSchedule",
    "PhysicsInput",
    "PhysicsMethod",
    "BeadTarget",
    "Calibrate",
    "PhotonsAt",
    "ConfigOption",
    "calibrate_training_noise",
    "TrainingNoise",
    "BEAD_PEAK_FACTOR",
    "SAMPLE_PHOTON_SPREAD",
    "MAX_PHOTON_LEVELS",
    "TrainingKernels",
    "training_volumes",
    "split_volumes",
    "build_pool",
    "Pool",
    "sample_batch",
    "add_noise",
    "allowed_flips",
    "center_convolve",
    "scale_to_unit",
    "robust_range",
    "Normalization",
    "physics_channel",
    "physics_function",
    "physics_kernel",
    "physics_options",
    "model_physics_channel",
    "PHYSICS_PSF_FILE",
    "neurodecon_loss",
    "hessian_frobenius",
    "ssim3d",
    "fourier_loss",
    "training_loss",
    "rln_loss",
    "global_ssim",
    "debcr_loss",
    "fourier_l1",
    "training_autocast",
    "precision_name",
    "place_network",
    "stack_normalization",
    "cpu_has_fast_bf16",
    "TrainState",
    "lr_factor",
    "train_step",
    "run_loop",
    "validation_metrics",
    "ResUNet",
    "ResBlock",
    "build_network",
    "count_parameters",
    "ARCH_CONFIGS",
    "arch_config",
    "for_voxel_size",
    "RLN",
    "RLNConfig",
    "rln_parameter_count",
    "RCAN",
    "RCANConfig",
    "rcan_parameter_count",
    "DeBCR",
    "DeBCRConfig",
    "haar_analysis",
    "haar_synthesis",
    "z_halving_for",
    "save_model",
    "model_card",
    "trained_for",
    "check_voxel_size",
    "check_levels",
    "trained_levels",
    "LEVEL_CHECK_VOXELS",
    "KERNEL_PSF_FILE",
    "CONFIG_NAME",
    "predict_tiled",
    "Tiling",
    "tiling",
    "normalization_for",
    "network_input",
    "predict_normalized",
    "isotropic",
    "SelfNetConfig",
    "SELFNET_PRESETS",
    "SELFNET_CONFIG_NAME",
    "SelfNetModel",
    "load_selfnet",
    "restore_isotropic",
    "restore_stack",
    "fuse_directions",
    "selfnet_config",
    "SelfNetData",
    "anisotropy_ratio",
    "degrade_lateral",
    "isotropic_voxel_size",
    "z_interpolate",
    "SelfNetGenerator",
    "PatchDiscriminator",
    "ssim2d",
    "SelfNetTraining",
    "train_selfnet",
]
