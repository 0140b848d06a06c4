"""Training and evaluation of ERR: data (paired folders or synthetic degradations), the
paper's losses, basicsr-compatible metrics, and a resumable trainer.

Imported only by ``err-stream train`` / ``err-stream eval`` and by user code that trains.
"""

from .config import ConfigError, TrainConfig, config_from_dict, load_config
from .degradations import DEGRADATIONS, Blur, CameraLowLight, ExposureNoise, Haze, LowLight, Rain, build_degradation
from .losses import ERRLoss, LossWeights
from .metrics import image_metrics, psnr, ssim
from .trainer import Trainer

__all__ = [
    "ConfigError", "TrainConfig", "config_from_dict", "load_config",
    "DEGRADATIONS", "LowLight", "ExposureNoise", "CameraLowLight", "Rain", "Haze", "Blur", "build_degradation",
    "ERRLoss", "LossWeights", "image_metrics", "psnr", "ssim", "Trainer",
]
