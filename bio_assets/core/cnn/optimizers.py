"""The classifier optimizers: torch's, at torch's defaults or at the defaults of the source's library
(TensorFlow/Keras), and Keras's RMSprop, whose update rule differs from torch's."""

from __future__ import annotations

import torch

# The defaults of TensorFlow/Keras, the source's library (tf.keras.optimizers, TF 2.x), in
# torch's names: learning rate 0.01 for SGD and 0.001 for the rest, Keras's epsilon 1e-7,
# RMSprop's rho 0.9 (Keras's own rule, KerasRMSprop), Adadelta's rho 0.95 (torch 0.9, lr 1.0) and
# Adagrad's initial accumulator 0.1 (torch 0). The source compared its optimizers at these values.
KERAS_DEFAULTS: dict[str, dict[str, float]] = {
    "sgd": {"lr": 0.01},
    "adam": {"lr": 0.001, "eps": 1e-7},
    "rmsprop": {"lr": 0.001, "rho": 0.9, "eps": 1e-7},
    "nadam": {"lr": 0.001, "eps": 1e-7},
    "adadelta": {"lr": 0.001, "rho": 0.95, "eps": 1e-7},
    "adagrad": {"lr": 0.001, "initial_accumulator_value": 0.1, "eps": 1e-7},
    "adamax": {"lr": 0.001, "eps": 1e-7},
}
LIBRARY_DEFAULTS = ("torch", "keras")


class KerasRMSprop(torch.optim.Optimizer):
    """RMSprop as TensorFlow/Keras computes it: ``v <- rho v + (1 - rho) g^2``,
    ``w <- w - lr g / sqrt(v + eps)``, with ``v`` starting at 0.

    torch's RMSprop puts epsilon outside the root, ``lr g / (sqrt(v) + eps)``: for gradients near
    1e-4 at eps 1e-7 its first step is about 10 times larger, so ``alpha=0.9, eps=1e-7`` on torch's
    class is not Keras's optimizer."""

    def __init__(self, params, lr: float = 0.001, rho: float = 0.9, eps: float = 1e-7) -> None:
        if lr <= 0 or not 0 <= rho < 1 or eps < 0:
            raise ValueError(f"KerasRMSprop needs lr > 0, 0 <= rho < 1, eps >= 0; got {lr}, {rho}, {eps}")
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            velocities = []
            for p in params:
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                velocities.append(state["velocity"])
            torch._foreach_mul_(velocities, group["rho"])
            torch._foreach_addcmul_(velocities, grads, grads, value=1 - group["rho"])
            denominators = torch._foreach_add(velocities, group["eps"])
            torch._foreach_sqrt_(denominators)
            torch._foreach_addcdiv_(params, grads, denominators, value=-group["lr"])
        return loss


OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "nadam": torch.optim.NAdam,
    "adadelta": torch.optim.Adadelta,
    "adagrad": torch.optim.Adagrad,
    "adamax": torch.optim.Adamax,
}
# Where Keras's update rule is not torch's class at other values.
KERAS_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {**OPTIMIZERS, "rmsprop": KerasRMSprop}

# Optimizers with a fused CPU/CUDA kernel: one pass over every parameter instead of a loop of
# small ops per tensor (AlexNet's head, Adam: 0.38 s per step per-tensor, 0.074 s fused).
FUSED = frozenset({"adam", "sgd", "adagrad"})


def make_optimizer(
    name: str, parameters, learning_rate: float | None, *, defaults: str = "torch"
) -> torch.optim.Optimizer:
    """``name``'s optimizer over ``parameters``, fused (or multi-tensor) where torch has the kernel;
    ``learning_rate=None`` keeps the library's default: torch's, or Keras's with ``defaults="keras"``
    (whose other hyper-parameters and, for RMSprop, update rule apply either way)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer {name!r} is not one of {sorted(OPTIMIZERS)}")
    if defaults not in LIBRARY_DEFAULTS:
        raise ValueError(f"defaults must be one of {LIBRARY_DEFAULTS}, got {defaults!r}")
    parameters = list(parameters)
    devices = {p.device.type for p in parameters}
    kernel: dict = {}
    if defaults == "keras":
        kernel.update(KERAS_DEFAULTS[name])
    if learning_rate is not None:
        kernel["lr"] = learning_rate
    optimizer = (KERAS_OPTIMIZERS if defaults == "keras" else OPTIMIZERS)[name]
    if optimizer is not KerasRMSprop:
        kernel.update({"fused": True} if name in FUSED and devices <= {"cpu", "cuda"} else {"foreach": True})
    return optimizer(parameters, **kernel)
