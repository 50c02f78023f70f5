"""Model families; importing this package registers every builder, and every custom class a saved
model needs to load in a fresh process (its layers, and the optimizer classes a compiled one holds)."""

import utils  # noqa: F401  (first: it sets TensorFlow's flags before TensorFlow loads)

# isort: split
from models import custom_cnn, fast_cnn, lenet  # noqa: F401  (registers the builders)
from models.fast_cnn import adapt_to_images
from models.pretrained import backbones  # noqa: F401  (registers the builders)
from models.registry import available_models, build_model, model_options, register_model
from utils.training import optimizers  # noqa: F401  (registration only: a saved, compiled model's optimizer)

__all__ = ["adapt_to_images", "available_models", "build_model", "model_options", "register_model"]
