"""Model families; importing this package registers every builder."""

from models import custom_cnn, fast_cnn, lenet, pretrained  # noqa: F401  (registers the builders)
from models.fast_cnn import adapt_to_images
from models.registry import available_models, build_model, model_options, register_model

__all__ = ["adapt_to_images", "available_models", "build_model", "model_options", "register_model"]
