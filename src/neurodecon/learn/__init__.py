"""Learned deconvolution: the NeuroDecon residual 3D U-Net, trained from beads or a PSF.

``train`` builds training pairs on the fly and writes a self-describing model directory;
``load_model`` reads it back; ``predict`` deconvolves any volume size with tiled inference;
``default_model_path`` is the small model shipped with the package.
"""

from ._config import TrainConfig
from ._model import Model, default_model_path, load_model
from ._net import NetConfig, ResUNet, build_network
from ._predict import predict
from ._train import train

__all__ = [
    "train",
    "load_model",
    "predict",
    "default_model_path",
    "Model",
    "TrainConfig",
    "NetConfig",
    "ResUNet",
    "build_network",
]
