"""Model families; importing this package registers every builder."""

from models import custom_cnn, lenet, pretrained  # noqa: F401  (registers the builders)
from models.registry import available_models, build_model, model_options, register_model

__all__ = ["available_models", "build_model", "model_options", "register_model"]
