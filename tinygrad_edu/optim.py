"""Optimizers and learning-rate schedules.

An optimizer holds a list of parameters and, on :meth:`Optimizer.step`, updates each
``p.data`` **in place** from ``p.grad`` with numpy operations (no graph is built, and
parameters whose ``grad`` is None are skipped).  Formulas use PyTorch's conventions; g is
the gradient, θ the parameter, η the learning rate, t the step number (from 1).

* :class:`SGD`: g ← g + λθ (L2 weight decay);  with momentum μ: b ← μb + g (b₁ = g),
  then g ← g + μb (Nesterov) or g ← b;  θ ← θ − ηg.
* :class:`Adam`: g ← g + λθ;  m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;
  m̂ = m/(1 − β₁ᵗ);  v̂ = v/(1 − β₂ᵗ);  θ ← θ − η m̂/(√v̂ + ε).
* :class:`AdamW`: Adam without the L2 term, plus decoupled decay θ ← θ(1 − ηλ) first.

A new optimizer subclasses :class:`Optimizer` and implements one method,
``_update(theta, grad, state)``: the base :meth:`Optimizer.step` counts the step and calls it
once per parameter that has a gradient (see :meth:`Optimizer._update`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .tensor import Tensor

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "LRScheduler",
    "OneCycleLR",
    "Optimizer",
    "StepLR",
    "l1_penalty",
]


class Optimizer:
    """Base class: ``params`` (Tensors with requires_grad), learning rate ``lr``, and a
    per-parameter ``state`` list of dicts of arrays.

    Subclasses implement :meth:`_update` (the one extension point) and nothing else of the
    stepping; :meth:`step`, :meth:`zero_grad` and the state dict come from here.
    """

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        who = type(self).__name__
        if isinstance(params, Tensor) or not isinstance(params, Iterable):
            raise TypeError(f"{who}: params must be an iterable of Tensors such as "
                            f"model.parameters(), got a {type(params).__name__}")
        self.params: list[Tensor] = list(params)
        if not self.params:
            raise ValueError(f"{who}: got an empty parameter list")
        seen: dict[int, int] = {}
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{who}: parameter {i} is a {type(p).__name__}, not a Tensor")
            if not p.is_leaf:
                raise ValueError(f"{who}: parameter {i} is not a leaf (it was computed by "
                                 f"{p.op.name}); optimise the tensors it was computed from")
            if id(p) in seen:
                raise ValueError(f"{who}: parameter {i} is parameter {seen[id(p)]} again "
                                 "(it would be updated twice per step)")
            seen[id(p)] = i
        self.lr = _hyper(who, "learning rate lr", lr)
        self.t = 0
        self.state: list[dict[str, np.ndarray]] = [{} for _ in self.params]

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """One optimisation step: ``t`` += 1, then :meth:`_update` for every parameter that
        has a gradient."""
        self.t += 1
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                self._update(p.data, p.grad, state)

    def _update(self, theta: np.ndarray, grad: np.ndarray, state: dict) -> None:
        """Update one parameter **in place**: ``theta`` is its data (write into it, e.g.
        ``theta -= ...``), ``grad`` its gradient (leave it untouched), ``state`` its own dict
        of arrays (empty on the first step; kept between steps and saved by
        :meth:`state_dict`).  ``self.t`` is the step number (from 1), ``self.lr`` the rate."""
        raise NotImplementedError(f"{type(self).__name__} does not define _update()")

    def state_dict(self) -> dict[str, Any]:
        """Learning rate, step count and per-parameter state arrays (copies)."""
        return {"lr": self.lr, "t": self.t,
                "state": [{k: v.copy() for k, v in s.items()} for s in self.state]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (for the same parameter list)."""
        if len(state["state"]) != len(self.params):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: state for {len(state['state'])} "
                f"parameters, optimizer has {len(self.params)}"
            )
        self.lr, self.t = float(state["lr"]), int(state["t"])
        self.state = [{k: np.array(v, copy=True) for k, v in s.items()} for s in state["state"]]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr:g}, {len(self.params)} parameters)"


def _hyper(who: str, name: str, value: Any, high: float = math.inf,
           high_open: bool = False) -> float:
    """A hyperparameter as a float in [0, high] (``[0, high)`` with ``high_open``): a string,
    a bool, NaN or infinity is refused by name, before any step is taken."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{who}: {name} must be a real number, got {type(value).__name__} "
                        f"{value!r:.40}")
    value = float(value)
    if not (math.isfinite(value) and 0.0 <= value and (value < high if high_open
                                                       else value <= high)):
        bound = "" if high == math.inf else f" and {'<' if high_open else '<='} {high:g}"
        raise ValueError(f"{who}: {name} must be finite, >= 0{bound}; got {value}")
    return value


def _with_decay(grad: np.ndarray, theta: np.ndarray, weight_decay: float) -> np.ndarray:
    """g + λθ as a new array (the parameter's own grad is left untouched)."""
    if not weight_decay:
        return grad
    out = np.multiply(theta, weight_decay, dtype=theta.dtype)
    out += grad
    return out


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay
    (PyTorch semantics, dampening 0): see the module docstring."""

    def __init__(self, params: Iterable[Tensor], lr: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        momentum = _hyper("SGD", "momentum", momentum, 1.0, high_open=True)
        weight_decay = _hyper("SGD", "weight_decay", weight_decay)
        if not isinstance(nesterov, bool):
            raise TypeError(f"SGD: nesterov must be True or False, got {nesterov!r:.40}")
        if nesterov and momentum <= 0:
            raise ValueError("SGD: nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay

    def _update(self, theta: np.ndarray, grad: np.ndarray, state: dict) -> None:
        g = _with_decay(grad, theta, self.weight_decay)
        mu = self.momentum
        if mu:
            buf = state.get("momentum")
            if buf is None:
                buf = state["momentum"] = np.array(g, dtype=theta.dtype, copy=True)
            else:
                buf *= mu
                buf += g
            if self.nesterov:
                ahead = np.multiply(buf, mu, dtype=theta.dtype)
                ahead += g
                g = ahead
            else:
                g = buf
        step = np.multiply(g, self.lr, dtype=theta.dtype)
        theta -= step


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction and optional L2 weight decay added to
    the gradient: see the module docstring."""

    decoupled = False

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        who = type(self).__name__
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{who}: betas must be a pair (β₁, β₂), got {betas!r:.40}")
        self.beta1 = _hyper(who, "betas[0]", betas[0], 1.0, high_open=True)
        self.beta2 = _hyper(who, "betas[1]", betas[1], 1.0, high_open=True)
        self.eps = _hyper(who, "eps", eps)
        self.weight_decay = _hyper(who, "weight_decay", weight_decay)

    def _update(self, theta: np.ndarray, grad: np.ndarray, state: dict) -> None:
        b1, b2, t = self.beta1, self.beta2, self.t
        if self.decoupled and self.weight_decay:
            theta *= 1.0 - self.lr * self.weight_decay
        g = grad if self.decoupled else _with_decay(grad, theta, self.weight_decay)
        if not state:
            state["m"] = np.zeros_like(theta)
            state["v"] = np.zeros_like(theta)
        m, v = state["m"], state["v"]
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        v += (1.0 - b2) * np.square(g)
        # θ −= η m̂/(√v̂ + ε) written as θ −= (η/(1 − β₁ᵗ)) m / (√v/√(1 − β₂ᵗ) + ε)
        step_size = self.lr / (1.0 - b1**t)
        root_corr = math.sqrt(1.0 - b2**t)
        denom = np.sqrt(v)
        denom *= 1.0 / root_corr
        denom += self.eps
        update = np.divide(m, denom)
        update *= step_size
        theta -= update


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): θ ← θ(1 − ηλ) before
    the Adam update, instead of adding λθ to the gradient.  Default λ = 0.01."""

    decoupled = True

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)


def l1_penalty(params: Iterable[Tensor], strength: float) -> Tensor:
    """L1 regularisation term strength·Σ|θ| over all ``params``, as a graph node to add to
    the loss; its gradient is strength·sign(θ) (0 at θ = 0)."""
    total = None
    for p in params:
        term = p.abs().sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("l1_penalty: no parameters given")
    return total * strength


class LRScheduler:
    """Base of learning-rate schedules: call :meth:`step` once per epoch (after the
    optimizer's steps); it sets ``optimizer.lr`` to :meth:`lr_at` the new epoch count."""

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> float:
        """Advance one epoch; returns the new learning rate."""
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)
        return self.optimizer.lr

    def get_last_lr(self) -> float:
        return self.optimizer.lr


class StepLR(LRScheduler):
    """η_e = η₀ · γ^⌊e / step_size⌋: multiply the rate by ``gamma`` every ``step_size``
    epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(optimizer)
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be >= 1, got {step_size}")
        self.step_size, self.gamma = step_size, gamma

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """η_e = η_min + (η₀ − η_min)(1 + cos(π e / T_max))/2: from η₀ down to ``eta_min``
    along half a cosine over ``T_max`` epochs (then back up, as PyTorch's closed form)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        super().__init__(optimizer)
        if T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be >= 1, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min

    def lr_at(self, epoch: int) -> float:
        cos = math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1.0 + cos) / 2.0


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, 2019), stepped after every **batch**: PyTorch's
    ``OneCycleLR`` (two phases, cosine annealing, the same defaults).

    Over T = ``total_steps`` (or ``epochs · steps_per_epoch``) steps s, with
    η₀ = ``max_lr``/``div_factor``, η_end = η₀/``final_div_factor`` and the peak at
    S = ``pct_start``·T − 1::

        η(s) = anneal(η₀ → max_lr, s/S)                     for s ≤ S   (warm-up)
        η(s) = anneal(max_lr → η_end, (s − S)/(T − 1 − S))  after       (annealing)
        anneal(a → b, p) = b + (a − b)(1 + cos πp)/2

    With ``cycle_momentum`` the momentum (SGD's ``momentum``, Adam's β₁) moves the other
    way: ``max_momentum`` → ``base_momentum`` during the warm-up, and back.  Call
    :meth:`step` after every optimizer step (:func:`tinygrad_edu.train.fit` does so for a
    scheduler with ``per_step = True``); more than T calls is a ``ValueError``, as in PyTorch.
    """

    per_step = True

    def __init__(self, optimizer: Optimizer, max_lr: float, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 pct_start: float = 0.3, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, cycle_momentum: bool = True,
                 base_momentum: float = 0.85, max_momentum: float = 0.95) -> None:
        super().__init__(optimizer)
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            total_steps = int(epochs) * int(steps_per_epoch)
        if int(total_steps) < 1:
            raise ValueError(f"OneCycleLR: total_steps must be >= 1, got {total_steps}")
        self.total_steps = int(total_steps)
        self.max_lr = _hyper("OneCycleLR", "max_lr", max_lr)
        self.pct_start = _hyper("OneCycleLR", "pct_start", pct_start, 1.0)
        self.initial_lr = self.max_lr / _hyper("OneCycleLR", "div_factor", div_factor)
        self.min_lr = self.initial_lr / _hyper("OneCycleLR", "final_div_factor",
                                               final_div_factor)
        self.base_momentum, self.max_momentum = base_momentum, max_momentum
        names = [n for n in ("momentum", "beta1") if getattr(optimizer, n, 0.0)]
        self.momentum_name = names[0] if cycle_momentum and names else None
        self.base_lr = self.initial_lr
        self._set(0)

    def _where(self, step: int) -> tuple[bool, float]:
        """(in the warm-up?, fraction p ∈ [0, 1] of that phase done) at ``step``."""
        peak = self.pct_start * self.total_steps - 1.0
        if step <= peak:
            return True, step / peak if peak > 0 else 1.0
        return False, min(1.0, (step - peak) / max(self.total_steps - 1.0 - peak, 1e-12))

    @staticmethod
    def _anneal(start: float, end: float, p: float) -> float:
        return end + (start - end) * (1.0 + math.cos(math.pi * p)) / 2.0

    def lr_at(self, epoch: int) -> float:
        """The rate after ``epoch`` steps (the base class's name; here it counts batches)."""
        rising, p = self._where(epoch)
        if rising:
            return self._anneal(self.initial_lr, self.max_lr, p)
        return self._anneal(self.max_lr, self.min_lr, p)

    def momentum_at(self, step: int) -> float:
        """The momentum (or β₁) after ``step`` steps: high when the rate is low."""
        rising, p = self._where(step)
        if rising:
            return self._anneal(self.max_momentum, self.base_momentum, p)
        return self._anneal(self.base_momentum, self.max_momentum, p)

    def _set(self, step: int) -> None:
        self.optimizer.lr = self.lr_at(step)
        if self.momentum_name is not None:
            setattr(self.optimizer, self.momentum_name, self.momentum_at(step))

    def step(self) -> float:
        """Advance one batch; returns the new learning rate."""
        if self.last_epoch >= self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {self.last_epoch + 1} times, more than "
                             f"total_steps = {self.total_steps}")
        self.last_epoch += 1
        self._set(self.last_epoch)
        return self.optimizer.lr
