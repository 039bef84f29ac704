"""Every node's inputs checked against its own schema before it runs, and errors that reach the user plain.

ComfyUI 0.3.75 checks neither combo values sent over the API nor NaN (no comparison with a min or max
fails for it), and node-tier callers skip its checks altogether; `ReverieNode` checks each input its
schema declares: numbers finite and within min..max, combo values among the options, IMAGE and MASK
tensors of the right shape with finite values. A uint8 IMAGE or MASK (0..255) is read as /255, as every
image file is: that is the only meaning its values can have, and it would otherwise turn white.

ComfyUI shows a failure as the exception's type with its module path, which for a custom node is the
pack's install path; errors of the pack's own classes (NonFiniteLoss, ...) are raised again as the plain
built-in type they derive from, with the same message.
"""
from __future__ import annotations

import functools
import inspect
import math
from numbers import Integral, Real
from typing import Any, Callable

import torch
from comfy_api.latest import io

from ..engine.style import check_finite, check_mask

PACKAGE = __name__.split(".")[0]  # the pack's root module (its install path when ComfyUI loads it)
SHOWN_OPTIONS = 12


class ReverieNode(io.ComfyNode):
    """A ComfyNode whose `execute` first checks its inputs against `define_schema()` (see the module)."""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        run = cls.__dict__.get("execute")
        if run is not None and not getattr(run.__func__, "checked", False):  # host-made clones inherit it
            cls.execute = classmethod(_checked(run.__func__))


def _checked(run: Callable[..., io.NodeOutput]) -> Callable[..., io.NodeOutput]:
    signature = inspect.signature(run)

    @functools.wraps(run)
    def execute(cls, *args, **kwargs) -> io.NodeOutput:
        values = signature.bind(cls, *args, **kwargs).arguments
        del values[next(iter(signature.parameters))]  # cls
        values = check_inputs(cls.define_schema(), values)
        try:
            return run(cls, **values)
        except Exception as e:
            plain = plain_type(type(e))
            if plain is type(e):
                raise
            raise plain(str(e)) from e

    execute.checked = True
    return execute


def plain_type(kind: type[BaseException]) -> type[BaseException]:
    """`kind`, or for a class of this pack the first built-in exception class it derives from."""
    if kind.__module__.split(".")[0] != PACKAGE:
        return kind
    return next(k for k in kind.__mro__ if k.__module__ == "builtins")


def check_inputs(schema: io.Schema, values: dict[str, Any]) -> dict[str, Any]:
    """`values` (execute's keyword arguments) checked against the schema's inputs; images and masks as floats."""
    title = schema.display_name or schema.node_id
    checked = dict(values)
    for spec in schema.inputs:
        value = values.get(spec.id)
        if value is None:
            continue  # an optional input left unconnected (ComfyUI itself reports missing required ones)
        name = f"input '{spec.display_name or spec.id}' of {title}"
        checked[spec.id] = _check(spec, value, name)
    return checked


def _check(spec: io.Input, value: Any, name: str) -> Any:
    if isinstance(spec, io.Combo.Input):
        return _option(value, list(spec.options), name)
    if isinstance(spec, io.Int.Input):
        if not isinstance(value, Integral) or isinstance(value, bool):
            raise ValueError(f"The {name} must be {_range('a whole number', spec)}; got {value!r}.")
        return _within(int(value), spec, name, "a whole number")
    if isinstance(spec, io.Float.Input):
        if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"The {name} must be {_range('a finite number', spec)}; got {value!r}.")
        return _within(float(value), spec, name, "a number")
    if isinstance(spec, io.String.Input) and not isinstance(value, str):
        raise ValueError(f"The {name} must be text; got {type(value).__name__}.")
    if isinstance(spec, io.Image.Input):
        return _image(value, name)
    if isinstance(spec, io.Mask.Input):
        return _mask(value, name)
    return value


def _range(kind: str, spec: io.Input) -> str:
    low, high = (_number(getattr(spec, bound, None)) for bound in ("min", "max"))
    if low is not None and high is not None:
        return f"{kind} from {low} to {high}"
    if low is not None:
        return f"{kind} of at least {low}"
    return f"{kind} of at most {high}" if high is not None else kind


def _number(x: float | None) -> str | None:
    return None if x is None else str(x) if isinstance(x, int) else f"{x:g}"


def _within(value: float, spec: io.Input, name: str, kind: str) -> float:
    low, high = getattr(spec, "min", None), getattr(spec, "max", None)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"The {name} must be {_range(kind, spec)}; got {_number(value)}.")
    return value


def _option(value: Any, options: list, name: str) -> Any:
    if value in options:
        return value
    shown = ", ".join(repr(o) for o in options[:SHOWN_OPTIONS])
    more = f" and {len(options) - SHOWN_OPTIONS} more" if len(options) > SHOWN_OPTIONS else ""
    raise ValueError(f"The {name} must be one of {shown}{more}; got {value!r}.")


def _as_float(x: torch.Tensor, name: str, kind: str) -> torch.Tensor:
    """A float tensor as it is; uint8 (0..255) and bool as floats in 0..1; other integers refused."""
    if x.is_floating_point():
        return x
    if x.dtype == torch.uint8:
        return x.float() / 255
    if x.dtype == torch.bool:
        return x.float()
    raise ValueError(f"The {name} holds {str(x.dtype).removeprefix('torch.')} values; an {kind} must hold floats "
                     f"in 0..1 (or uint8 in 0..255).")


def _image(value: Any, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"The {name} must be an IMAGE; got {type(value).__name__}.")
    if value.dim() != 4 or not 1 <= value.shape[-1] <= 4 or 0 in value.shape:
        raise ValueError(f"The {name} must be an IMAGE [batch, height, width, channels] with 1-4 channels; "
                         f"got shape {tuple(value.shape)}.")
    return check_finite(_as_float(value, name, "IMAGE"), name, channel_dim=-1)


def _mask(value: Any, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"The {name} must be a MASK; got {type(value).__name__}.")
    if value.dim() not in (2, 3) or 0 in value.shape:
        raise ValueError(f"The {name} must be a MASK [batch, height, width] (or [height, width]); "
                         f"got shape {tuple(value.shape)}.")
    value = _as_float(value, name, "MASK")
    check_mask(value, name)
    return value
