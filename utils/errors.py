"""The project's own exception types: each message says what was wrong and what is accepted."""


class ProjectError(Exception):
    """Base class of every error this project raises for a user mistake."""


class ConfigError(ProjectError, ValueError):
    """An `args` key, type or value is not accepted."""


class DataError(ProjectError):
    """The dataset is missing, corrupt or cannot be downloaded."""


class WeightsError(ProjectError):
    """Pretrained weights are missing or cannot be loaded."""


class RunFolderError(ProjectError):
    """A run folder would be overwritten or cannot be resumed."""


class TrainingError(ProjectError):
    """Training cannot go on (the loss stopped being finite)."""


class UnknownModelError(ConfigError, KeyError):
    """A model name is not in the registry."""

    def __str__(self):
        return str(self.args[0])


class ModelFileError(ProjectError):
    """A saved model file is missing or cannot be loaded."""


class ImageFileError(ProjectError):
    """An image file to classify is missing, unreadable or not an image."""


class TuningError(ProjectError):
    """A hyperparameter search cannot start or go on (e.g. a worker cannot reach its chief)."""


class VersionError(ProjectError):
    """Python, TensorFlow or Keras is older than the project supports."""


class InstallError(ProjectError):
    """The Colab install step could not install what is missing without replacing an installed package."""


class ExportError(ProjectError):
    """A model cannot be exported in a format (the message names the format and what blocks it)."""
