"""Optimizers with per-variable learning-rate factors and decoupled weight decay, and the
learning-rate schedules."""

import math
import re

import keras


def steps_per_epoch(num_images, batch_size):
    return math.ceil(num_images / batch_size)


@keras.saving.register_keras_serializable(package="cifar10")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `peak` over `warmup_steps`, then linear decay to 0 at `total_steps`."""

    def __init__(self, peak, warmup_steps, total_steps):
        self.peak = peak
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        rising = step / max(self.warmup_steps, 1)
        falling = (self.total_steps - step) / max(self.total_steps - self.warmup_steps, 1)
        fraction = keras.ops.where(step < self.warmup_steps, rising, falling)
        return self.peak * keras.ops.clip(fraction, 0.0, 1.0)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


def make_schedule(name, learning_rate, total_steps, warmup_steps):
    """The learning rate schedule `name` (settings.lr_schedule) asks for: a float or a Keras schedule."""
    if name == "constant":
        return learning_rate
    warmup_steps = 0 if name == "cosine" else min(warmup_steps, total_steps - 1)
    if name == "warmup_linear":
        return WarmupLinearDecay(learning_rate, warmup_steps, total_steps)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else learning_rate,
        decay_steps=max(total_steps - warmup_steps, 1),
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


class _AverageKeptByCallback:
    """Optimizer mixin: with `use_ema`, fit's closing overwrite of the weights by their average is
    skipped. Keras's SwapEMAWeights (utils.training.callbacks) already puts the average in the model at
    every epoch's end; when training stops before its last epoch, the optimizer's average slots
    hold the trained weights the callback parked there, and the overwrite would bring those back."""

    def finalize_variable_values(self, var_list):
        pass


class _RateFactors:
    """Optimizer mixin: `rate_factors` ({variable path: factor}) scales single variables'
    learning rates (weight decay keeps the common rate)."""

    rate_factors = {}

    def build(self, variables):
        super().build(variables)
        self._factors = [self.rate_factors.get(variable.path, 1.0) for variable in variables]

    def update_step(self, gradient, variable, learning_rate):
        factor = self._factors[self._get_variable_index(variable)]
        return super().update_step(gradient, variable, learning_rate * factor)


@keras.saving.register_keras_serializable(package="cifar10")
class FactorSGD(_AverageKeptByCallback, _RateFactors, keras.optimizers.SGD):
    """SGD with per-variable learning-rate factors."""


@keras.saving.register_keras_serializable(package="cifar10")
class FactorAdam(_AverageKeptByCallback, _RateFactors, keras.optimizers.Adam):
    """Adam with per-variable learning-rate factors."""


@keras.saving.register_keras_serializable(package="cifar10")
class FactorAdamW(_AverageKeptByCallback, _RateFactors, keras.optimizers.AdamW):
    """AdamW with per-variable learning-rate factors."""


@keras.saving.register_keras_serializable(package="cifar10")
class FactorRMSprop(_AverageKeptByCallback, _RateFactors, keras.optimizers.RMSprop):
    """RMSprop with per-variable learning-rate factors."""


@keras.saving.register_keras_serializable(package="cifar10")
class FactorMuon(_AverageKeptByCallback, _RateFactors, keras.optimizers.Muon):
    """Keras's Muon, with convolution kernels orthogonalised too, and per-variable rate factors.

    Keras's Muon leaves every variable that is not a matrix to its AdamW step; here a kernel of
    higher rank is orthogonalised as the matrix (product of the leading axes, output channels),
    as the Muon variants of airbench treat convolution filters. Vectors (biases, BatchNorm
    shifts) and the layers `exclude_layers` names take the AdamW step.

    With `hold_norms`, each Muon step first rescales its kernel to norm sqrt(output channels), as
    airbench94_muon does: behind BatchNorm a kernel's scale changes nothing but the relative size
    of the fixed-size orthogonal steps, which this keeps to the learning rate.
    """

    def __init__(self, hold_norms=False, **kwargs):
        super().__init__(**kwargs)
        self.hold_norms = hold_norms

    def _muon_update_step(self, gradient, variable, lr, m):
        if self.hold_norms:
            norm = keras.ops.sqrt(keras.ops.sum(keras.ops.square(variable)))
            self.assign(variable, variable * (math.sqrt(variable.shape[-1]) / norm))
        super()._muon_update_step(gradient, variable, lr, m)

    def _should_use_adamw(self, variable):
        if len(variable.shape) > 2:
            return any(re.search(pattern, variable.path) for pattern in self.exclude_layers)
        return super()._should_use_adamw(variable)

    def zeropower_via_newtonschulz5(self, x, steps):
        shape = tuple(x.shape)
        matrix = keras.ops.reshape(x, (-1, shape[-1]))
        return keras.ops.reshape(super().zeropower_via_newtonschulz5(matrix, steps), shape)

    def lr_adjust(self, x):
        """Keras's update scale, sqrt(larger side) * rms_rate, of the kernel's matrix view."""
        if self.rms_rate is None:
            return x
        return x * math.sqrt(max(math.prod(x.shape[:-1]), x.shape[-1])) * self.rms_rate

    def get_config(self):
        return {**super().get_config(), "hold_norms": self.hold_norms}


def make_optimizer(settings, learning_rate, rate_factors=None, classifier=None, matrices=()):
    """The optimizer the "optimizer" section `settings` names, with decoupled weight decay.

    BatchNorm parameters and biases are excluded from weight decay.

    Args:
        settings: the "optimizer" section of args (`utils.config.sections.section`).
        rate_factors: {variable path: factor} multiplying those variables' learning rate.
        classifier: path of the output layer's kernel, which Muon leaves to its AdamW step (as
            Muon's authors advise for the output layer).
        matrices: paths of the trainable kernels and weight matrices but the classifier, which
            muon_sgd gives to Muon.
    """
    rate_factors = dict(rate_factors or {})
    if settings.optimizer == "muon_sgd":
        return _muon_for_matrices(settings, learning_rate, rate_factors, matrices)
    return _single_optimizer(settings, settings.optimizer, learning_rate, rate_factors, classifier)


def _averaging(ema_momentum):
    if ema_momentum is None:
        return {}
    return {"use_ema": True, "ema_momentum": float(ema_momentum)}


def _single_optimizer(settings, name, learning_rate, rate_factors, classifier=None):
    common = {
        "learning_rate": learning_rate,
        "weight_decay": float(settings.weight_decay),
        **_averaging(settings.ema_momentum),
    }
    muon_excluded = [re.escape(classifier)] if classifier else []
    constructors = {
        "sgd": lambda: FactorSGD(momentum=float(settings.momentum), nesterov=True, **common),
        "adam": lambda: FactorAdam(**common),
        "amsgrad": lambda: FactorAdam(amsgrad=True, **common),
        "adamw": lambda: FactorAdamW(**common),
        "rmsprop": lambda: FactorRMSprop(momentum=float(settings.momentum), **common),
        "muon": lambda: FactorMuon(
            momentum=float(settings.momentum),
            adam_weight_decay=common["weight_decay"],
            exclude_layers=muon_excluded,
            **common,
        ),
    }
    optimizer = constructors[name]()
    optimizer.rate_factors = rate_factors
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return optimizer


def _muon_for_matrices(settings, learning_rate, rate_factors, matrices):
    """airbench94_muon's split as a Keras MultiOptimizer: `matrices` take Muon steps (3 Newton-Schulz
    iterations, norms held, no weight decay, `muon_lr_factor` times the rate, `muon_momentum`), the
    rest Nesterov SGD with `momentum` and `weight_decay`."""
    muon = FactorMuon(
        learning_rate=learning_rate,
        momentum=float(settings.muon_momentum),
        ns_steps=3,
        rms_rate=None,
        weight_decay=0.0,
        hold_norms=True,
        **_averaging(settings.ema_momentum),
    )
    muon.rate_factors = {path: settings.muon_lr_factor * rate_factors.get(path, 1.0) for path in matrices}
    rest = _single_optimizer(settings, "sgd", learning_rate, rate_factors)
    routes = keras.optimizers.OptimizerMap(rest, {re.escape(path): muon for path in matrices})
    return keras.optimizers.MultiOptimizer(routes)


def base_learning_rate(optimizer):
    """The learning rate `args['learning_rate']` schedules: a MultiOptimizer's default part's,
    through the LossScaleOptimizer that Keras wraps around it under mixed_float16 (whose own
    `learning_rate` raises on a MultiOptimizer)."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer = optimizer.inner_optimizer
    if isinstance(optimizer, keras.optimizers.MultiOptimizer):
        optimizer = optimizer.optimizers[-1]
    return optimizer.learning_rate
