"""`Module` and `Parameter`: the containers that hold a model's weights.

A :class:`Module` is a function with state.  Assigning a :class:`Parameter`, another
module, or (through :meth:`Module.register_buffer`) a numpy array to an attribute records
it, in assignment order, so that :meth:`Module.named_parameters` can walk the tree and
name every weight by its path (``"layers.0.weight"``).  The names mirror PyTorch's.

Attributes live in the instance ``__dict__`` as usual, so reading ``self.weight`` inside
``forward`` costs nothing extra; only *assigning* goes through the bookkeeping.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ..autograd import GradMode, Node
from ..hooks import HookError, RemovableHandle
from ..registry import ONE, Unary
from ..tensor import Tensor

__all__ = ["Module", "ModuleList", "Parameter", "Sequential", "ShapeError", "StateDictError"]


class Parameter(Tensor):
    """A Tensor that a :class:`Module` owns and an optimizer updates (``requires_grad=True``).

    Integer data becomes float32; float32/float64 data keeps its dtype.
    """

    __slots__ = ()

    def __init__(self, data: Any, dtype: Any = None, requires_grad: bool = True) -> None:
        super().__init__(data, dtype=dtype, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor"):]


class StateDictError(KeyError, ValueError):
    """A state dict does not fit the model: the message names the keys and shapes."""

    def __str__(self) -> str:  # KeyError would show the message with quotes
        return str(self.args[0]) if self.args else ""


class ShapeError(ValueError):
    """An input that does not fit an op, reported as ``"<who>: <detail>"``.

    Each op checks its inputs once and raises this under its own name (``"conv2d: ..."``);
    a layer that called the op raises it again under the layer's repr (see
    :meth:`Module.input_error`), e.g. ``Conv2d(1, 16, kernel_size=5): expected input
    (N, 1, H, W), got (128, 3, 28, 28)``.
    """

    def __init__(self, who: str, detail: str) -> None:
        super().__init__(f"{who}: {detail}")
        self.who, self.detail = who, detail

    def __reduce__(self) -> tuple:
        return type(self), (self.who, self.detail)


class Module:
    """Base class of every layer and model.

    Subclasses set parameters and sub-modules in ``__init__`` and define ``forward``;
    calling the module calls ``forward``.
    """

    training: bool

    def __init__(self) -> None:
        d = self.__dict__
        d["_parameters"] = {}
        d["_modules"] = {}
        d["_buffers"] = {}
        d["training"] = True

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            )
        was_buffer = d["_buffers"].pop(name, None) is not None
        d["_parameters"].pop(name, None)
        d["_modules"].pop(name, None)
        if isinstance(value, Parameter):
            d["_parameters"][name] = value
        elif isinstance(value, Module):
            d["_modules"][name] = value
        elif was_buffer and isinstance(value, np.ndarray):
            d["_buffers"][name] = value
        d[name] = value

    def __delattr__(self, name: str) -> None:
        for key in ("_parameters", "_modules", "_buffers"):
            self.__dict__[key].pop(name, None)
        del self.__dict__[name]

    def register_buffer(self, name: str, array: np.ndarray) -> None:
        """Record a non-learned array (e.g. batch-norm running statistics) as state:
        it is saved by :meth:`state_dict` but not returned by :meth:`parameters`."""
        self.__setattr__(name, array)
        self.__dict__["_buffers"][name] = array

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Record ``param`` under ``name`` (``None`` records the absence, e.g. ``bias``)."""
        self.__setattr__(name, param)

    # ------------------------------------------------------------------ calling
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if "_module_hooks" in self.__dict__:  # only modules given a hook pay for hooks
            return _call_with_hooks(self, args, kwargs)
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ hooks
    def register_forward_pre_hook(self, hook: Any) -> RemovableHandle:
        """Call ``hook(module, args)`` before every ``forward``; a non-None return replaces
        the positional arguments (a tuple, or one value)."""
        return RemovableHandle(_hooks(self)["pre"], hook)

    def register_forward_hook(self, hook: Any) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after every ``forward``; a non-None return
        replaces the output."""
        return RemovableHandle(_hooks(self)["forward"], hook)

    def register_full_backward_hook(self, hook: Any) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` in backward, once per call of the
        module, when the gradients of its inputs are known: ``grad_output = (∂L/∂output,)``,
        ``grad_input`` one entry per positional argument (``∂L/∂input`` through this module,
        None for an input that needs no gradient).  A non-None return (a tuple like
        ``grad_input``) replaces what is passed on to the inputs: possible for a module of
        one tensor input (every layer here).  Needs ``forward`` to return a Tensor."""
        return RemovableHandle(_hooks(self)["backward"], hook)

    def input_error(self, err: ShapeError) -> ShapeError:
        """``err`` (raised by an op this layer called) under this layer's name, whose
        arguments the user wrote: ``raise self.input_error(err) from None``."""
        return ShapeError(repr(self), err.detail)

    # ------------------------------------------------------------------ traversal
    def children(self) -> Iterator[Module]:
        """The direct sub-modules, in assignment order."""
        return iter(list(self._modules.values()))

    def named_children(self) -> Iterator[tuple[str, Module]]:
        return iter(list(self._modules.items()))

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every descendant, depth first, with dotted paths ("" for self)."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            kids = [(f"{name}.{k}" if name else k, m) for k, m in module._modules.items()]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator[Module]:
        """This module and every descendant, depth first."""
        return (m for _, m in self.named_modules())

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Every parameter with its dotted path, each shared parameter once, in a fixed
        order: a module's own parameters (assignment order) before its children's."""
        seen: set[int] = set()
        for path, module in self.named_modules():
            for name, p in module._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{path}.{name}" if path else name), p

    def parameters(self) -> list[Parameter]:
        """All parameters, in the order of :meth:`named_parameters`."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        """Every buffer (non-learned state such as running statistics) with its path."""
        for path, module in self.named_modules():
            for name, b in module._buffers.items():
                yield (f"{path}.{name}" if path else name), b

    def buffers(self) -> list[np.ndarray]:
        return [b for _, b in self.named_buffers()]

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Total number of scalar parameters (optionally only those with requires_grad)."""
        return sum(
            p.data.size for p in self.parameters() if p.requires_grad or not trainable_only
        )

    # ------------------------------------------------------------------ modes and grads
    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None (the next backward starts afresh)."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active, batch-norm uses batch statistics) for the whole
        tree; ``train(False)`` is :meth:`eval`.  Returns self."""
        for m in self.modules():
            m.__dict__["training"] = bool(mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode: dropout is the identity, batch-norm uses running statistics."""
        return self.train(False)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer array, keyed by dotted path."""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        state.update((name, np.array(b, copy=True)) for name, b in self.named_buffers())
        return state

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Copy arrays from ``state`` into the parameters and buffers, in place (so an
        optimizer holding the parameters keeps working).

        Shapes must match exactly; with ``strict`` the keys must match too.  Errors name
        the offending keys and both shapes; nothing is modified unless everything fits.
        """
        targets: dict[str, np.ndarray] = {n: p.data for n, p in self.named_parameters()}
        targets.update(self.named_buffers())
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        if strict and (missing or unexpected):
            raise StateDictError(
                f"load_state_dict into {type(self).__name__}: missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        pairs = []
        for name, target in targets.items():
            if name not in state:
                continue
            value = np.asarray(state[name])
            if value.shape != target.shape:
                raise StateDictError(
                    f"load_state_dict: size mismatch for {name!r}: the checkpoint has shape "
                    f"{value.shape}, the model's parameter has shape {target.shape}"
                )
            pairs.append((target, value))
        for target, value in pairs:
            target[...] = value

    # ------------------------------------------------------------------ display
    def extra_repr(self) -> str:
        """The text between the parentheses of this module's repr (override)."""
        return ""

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")"
        lines = [head]
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        return "\n".join(lines) + "\n)"


def _hooks(module: Module) -> dict[str, dict]:
    hooks = module.__dict__.get("_module_hooks")
    if hooks is None:
        hooks = module.__dict__["_module_hooks"] = {"pre": {}, "forward": {}, "backward": {}}
    return hooks


#: The identity op marking a module's inputs and output when it has a backward hook, so that
#: the hook sees exactly the gradients that cross the module's boundary (not registered).
_boundary = Unary("module_boundary", lambda m, x: x, ONE, category="shape", f_text="x",
                  grad_texts=("f'(x) = 1",), register=False)


def _call_with_hooks(module: Module, args: tuple, kwargs: dict) -> Any:
    """``module(*args, **kwargs)`` with its forward pre-hooks, forward hooks and backward hooks."""
    hooks = module.__dict__["_module_hooks"]
    for hook in list(hooks["pre"].values()):
        new = hook(module, args)
        if new is not None:
            args = new if isinstance(new, tuple) else (new,)
    backward = GradMode.enabled and hooks["backward"]
    call_args = args
    if backward:
        needs = [isinstance(a, Tensor) and a.requires_grad for a in args]
        call_args = tuple(_boundary(a) if need else a for a, need in zip(args, needs))
    output = module.forward(*call_args, **kwargs)
    for hook in list(hooks["forward"].values()):
        new = hook(module, args, output)
        if new is not None:
            output = new
    if backward:
        output = _watch_gradients(module, hooks["backward"], call_args, needs, output)
    return output


def _watch_gradients(module: Module, hooks: dict, inputs: tuple, needs: list[bool],
                     output: Any) -> Any:
    """Tensor hooks on the boundary nodes that gather one call's gradients and call the
    module's backward hooks once all of them are known."""
    if not isinstance(output, Node) or not output.requires_grad:
        if isinstance(output, Node):
            return output  # nothing will flow back: nothing to report
        raise TypeError(f"{type(module).__name__}: a full backward hook needs forward to return "
                        f"a Tensor, got {type(output).__name__}")
    output = _boundary(output)
    state: dict[str, Any] = {"grad_output": None, "grad_input": [None] * len(inputs), "left": 0}

    def fire() -> tuple:
        grad_input = tuple(state["grad_input"])
        for hook in list(hooks.values()):
            try:
                new = hook(module, grad_input, (state["grad_output"],))
            except Exception as exc:
                raise HookError(f"the full backward hook {getattr(hook, '__name__', hook)!r} of "
                                f"{module!r} raised {type(exc).__name__}: {exc}") from exc
            if new is not None:
                if sum(needs) != 1 or not isinstance(new, tuple) or len(new) != len(inputs):
                    raise HookError(
                        f"the full backward hook {getattr(hook, '__name__', hook)!r} of "
                        f"{module!r} returned {type(new).__name__}; a replacement "
                        f"must be a tuple of {len(inputs)} (one per input), for a module of "
                        "one tensor input")
                grad_input = new
        return grad_input

    def on_output(g: Any) -> None:
        state["grad_output"], state["left"] = g, sum(needs)
        state["grad_input"] = [None] * len(inputs)
        if not any(needs):
            fire()

    output.register_hook(on_output)
    for i, (x, need) in enumerate(zip(inputs, needs)):
        if need:
            x.register_hook(_on_input(i, state, fire))
    return output


def _on_input(i: int, state: dict, fire: Any) -> Any:
    def on_input(g: Any) -> Any:
        state["grad_input"][i] = g
        state["left"] -= 1
        if state["left"] == 0:
            return fire()[i]
        return None

    return on_input


class Sequential(Module):
    """Modules applied one after another: ``Sequential(a, b, c)(x) == c(b(a(x)))``.

    The children are named "0", "1", ... so their parameters are "0.weight", ...
    """

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, not a Module")
            setattr(self, str(i), layer)
        self.__dict__["_layers"] = tuple(layers)

    def forward(self, x: Any) -> Any:
        for layer in self._layers:
            x = layer(x)
        return x

    def __getitem__(self, i: int | slice) -> Module:
        if isinstance(i, slice):
            return Sequential(*self._layers[i])
        return self._layers[i]

    def __len__(self) -> int:
        return len(self._layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._layers)


class ModuleList(Module):
    """A list of modules whose parameters are registered (named "0", "1", ...)."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))
