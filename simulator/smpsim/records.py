"""Dataclasses whose generated code is only their ``__init__``.

``@dataclass`` compiles each method it generates from source text: ``__init__``, ``__repr__``
and ``__eq__``, and for a frozen class ``__hash__``, ``__setattr__`` and ``__delattr__`` too.
With sixty such classes that was a tenth of the work ``smpsim run`` does before it answers.
Classes made with :func:`frozen` (``@dataclass(frozen=True)``) or :func:`record`
(``@dataclass``) compile their ``__init__`` alone and share the rest, with the same semantics.
Not for classes made, compared or hashed on a request path: the shared methods are slower than
generated ones (and a frozen one's ``__init__`` sets each field through them).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, dataclass_transform

_T = TypeVar("_T")


class _Fields:  # noqa: PLW1641 (Record and Frozen each say how they hash)
    """Equality and repr as ``@dataclass`` generates them: fields compared in order and only
    against the same class, shown as ``Name(field=value, ...)``."""

    __slots__ = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}"
                          for f in dataclasses.fields(self))  # type: ignore[arg-type]
        return f"{self.__class__.__qualname__}({shown})"


class Record(_Fields):
    """A mutable dataclass's methods besides ``__init__``: unhashable, as ``@dataclass`` makes
    a class that compares by its fields."""

    __slots__ = ()
    __hash__: ClassVar[None] = None  # type: ignore[assignment]


class Frozen(_Fields):
    """A frozen dataclass's methods besides ``__init__``: hashed as the tuple of its fields, no
    attribute set or deleted once the instance is made."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self._values())

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
    """``@dataclass(frozen=True)`` for a class deriving from :class:`Frozen`."""
    if not issubclass(cls, Frozen):
        raise TypeError(f"{cls.__qualname__} must derive from Frozen")
    return dataclass(eq=False, repr=False)(cls)


@dataclass_transform(field_specifiers=(field,))
def record(cls: type[_T]) -> type[_T]:
    """``@dataclass`` for a class deriving from :class:`Record`."""
    if not issubclass(cls, Record):
        raise TypeError(f"{cls.__qualname__} must derive from Record")
    return dataclass(eq=False, repr=False)(cls)
