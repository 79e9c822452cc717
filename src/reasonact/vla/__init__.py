"""Knowledge-insulated VLA (KI) and its baselines π0, π0-FAST and frozen backbone; see docs/vla.md."""

from reasonact.vla.config import SIZES, VARIANTS, ExpertConfig, LMConfig, VisionConfig, VLAConfig
from reasonact.vla.contract import BasePolicy, Observation
from reasonact.vla.model import KIVLA, build_model
from reasonact.vla.prompt import ByteTokenizer, PromptTokenizer
from reasonact.vla.transforms import Normalizer, VLATransforms

__all__ = [
    "KIVLA",
    "SIZES",
    "VARIANTS",
    "BasePolicy",
    "ByteTokenizer",
    "ExpertConfig",
    "LMConfig",
    "Normalizer",
    "Observation",
    "PromptTokenizer",
    "VLAConfig",
    "VLATransforms",
    "VisionConfig",
    "build_model",
]
