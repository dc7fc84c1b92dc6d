"""The lessons: each claim of the activation and backprop texts, run as an experiment.

>>> [lesson.name for lesson in LESSONS.values()][:3]
['activations', 'backprop-by-hand', 'linear-collapse']

Every lesson is a module here with a ``run(fast=False, out="lessons-out", data=None,
seed=0)`` function that prints nothing, writes its PNG figures into ``out`` and returns a
:class:`~.common.LessonResult` (the table, the figure paths and the numbers its claim rests
on).  ``fast=True`` runs it in seconds on small subsets (the test suite asserts each
claim that way); ``data`` is the MNIST directory for the loader (default: the loader's
search).  ``tinygrad-edu lesson`` lists them, ``tinygrad-edu lesson NAME [--fast] [--out
DIR]`` runs one; ``examples/lesson_*.ipynb`` walk through them cell by cell, and
``docs/lessons.md`` holds every full run.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .common import LessonResult

__all__ = ["LESSONS", "Lesson", "LessonResult", "get", "run"]


@dataclass(frozen=True)
class Lesson:
    """A lesson's command name, its module (under ``tinygrad_edu.lessons``) and one line."""

    name: str
    module: str
    description: str

    @property
    def run(self) -> Callable[..., LessonResult]:
        """The lesson's ``run`` function (its module is imported on first use)."""
        return importlib.import_module(f"{__name__}.{self.module}").run


LESSONS: dict[str, Lesson] = {lesson.name: lesson for lesson in (
    Lesson("activations", "activations",
           "every registry activation and its derivative; saturation ranges; sigmoid′ ≤ 1/4"),
    Lesson("backprop-by-hand", "backprop",
           "2-2-1 sigmoid net: textbook δ terms against the engine, the stepper and one SGD step"),
    Lesson("linear-collapse", "linear_collapse",
           "a deep identity net is one matrix; on MNIST it stays at logistic regression"),
    Lesson("vanishing-gradients", "vanishing",
           "20-layer MLP: gradient norm per layer for nine activations (log scale)"),
    Lesson("dead-relu", "dead_relu",
           "a too-high learning rate kills ReLU units, not Leaky ReLU/ELU; ReLU sparsity"),
    Lesson("activation-race", "activation_race",
           "same MNIST MLP per activation: accuracy per epoch, time, epochs to a target"),
    Lesson("init", "initialisation",
           "activation scale and gradient growth through 20 layers: He vs Xavier; bias 0.1"),
    Lesson("softmax-stability", "softmax_stability",
           "naive softmax-then-log overflows (NaN, wrong gradient); fused cross-entropy does not"),
    Lesson("regularisation", "regularisation",
           "L1 vs L2 weight histograms and sparsity; batch norm at a high learning rate"),
)}


def get(name: str) -> Lesson:
    """The lesson called ``name`` (KeyError listing the lessons otherwise)."""
    try:
        return LESSONS[name]
    except KeyError:
        raise KeyError(f"no lesson named {name!r}; choose from {', '.join(LESSONS)}") from None


def run(name: str, fast: bool = False, out: str | os.PathLike[str] = "lessons-out",
        data: Any = None, seed: int = 0) -> LessonResult:
    """Run the lesson ``name``; see the module docstring."""
    return get(name).run(fast=fast, out=out, data=data, seed=seed)
