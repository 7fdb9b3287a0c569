"""Frozen value classes whose generated code is only their ``__init__``.

``@dataclass(frozen=True)`` compiles five or six methods per class from source text
(``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``); with
sixty such classes that was a tenth of the work ``smpsim run`` does before it answers. Classes
made with :func:`frozen` compile their ``__init__`` alone and share the rest from
:class:`Frozen`, with the same semantics. Not for classes made or hashed on a request path: the
shared methods are slower than generated ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar, dataclass_transform

_T = TypeVar("_T")


class Frozen:
    """The methods ``@dataclass(frozen=True)`` would generate, besides ``__init__``: fields
    compared in order and only against the same class, hashed as a tuple, shown as
    ``Name(field=value, ...)``, and no attribute set or deleted once the instance is made."""

    __slots__ = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}"
                          for f in dataclasses.fields(self))  # type: ignore[arg-type]
        return f"{self.__class__.__qualname__}({shown})"

    def __setattr__(self, name: str, value: Any) -> None:
        # The generated __init__ assigns each field once; every other assignment is refused,
        # as a frozen dataclass refuses it (every field is set when __init__ ends).
        if name in self.__dict__ or name not in self.__dataclass_fields__:  # type: ignore[attr-defined]
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def frozen(cls: type[_T]) -> type[_T]:
    """A frozen dataclass (``cls`` derives from :class:`Frozen`) with only ``__init__``
    generated."""
    if not issubclass(cls, Frozen):
        raise TypeError(f"{cls.__qualname__} must derive from Frozen")
    return dataclass(eq=False, repr=False)(cls)
