"""Dataclasses without generated code.

``@dataclass`` compiles each method it generates from source text: ``__init__``, ``__repr__``
and ``__eq__``, and for a frozen class ``__hash__``, ``__setattr__`` and ``__delattr__`` too.
With sixty such classes that was a tenth of the work ``smpsim run`` does before it answers, and
the ``__init__`` alone still 6 % of it (issue 15). Classes made with :func:`frozen`
(``@dataclass(frozen=True)``) or :func:`record` (``@dataclass``) compile nothing: they share one
``__init__``, which binds the arguments from the fields as the generated one does (defaults,
factories, ``init=False`` fields, ``__post_init__``, the same ``TypeError`` for a wrong call),
and one equality, hash, repr and refusal to assign, with the same semantics.
Not for classes made, compared or hashed on a request path: the shared methods are slower than
generated ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, dataclass, field
from typing import Any, ClassVar, NoReturn, TypeVar, dataclass_transform

_T = TypeVar("_T")


_Plan = tuple[tuple[str, ...], frozenset[str], tuple[tuple[str, bool, Any, Any], ...], bool]
"""How the shared ``__init__`` fills an instance: the ``__init__`` parameters in order, the same
as a set, each field as (name, is a parameter, default, default factory) in order, and whether
``__post_init__`` follows (worked out once per class, when it is made)."""


def _plan(cls: type) -> _Plan:
    fields = dataclasses.fields(cls)
    names = tuple(f.name for f in fields if f.init)
    return (names, frozenset(names),
            tuple((f.name, f.init, f.default, f.default_factory) for f in fields),
            hasattr(cls, "__post_init__"))


def _wrong_call(instance: _Fields, args: tuple[Any, ...], kwargs: dict[str, Any]) -> NoReturn:
    """Raise the ``TypeError`` the generated ``__init__`` would: Python's own, from a function
    with its signature (compiled only now, for a call that is a bug)."""
    name = type(instance).__qualname__
    params = ", ".join(field if default is MISSING and factory is MISSING else f"{field}=None"
                       for field, parameter, default, factory in instance._record_plan[2]
                       if parameter)
    scope: dict[str, Any] = {}
    exec(f"def __init__(self, {params}): pass", scope)  # the parameters are field names
    signature = scope["__init__"]
    signature.__qualname__ = f"{name}.__init__"
    signature(instance, *args, **kwargs)
    raise AssertionError(f"{name}: a call the shared __init__ refused fits")


class _Fields:  # noqa: PLW1641 (Record and Frozen each say how they hash)
    """``__init__``, equality and repr as ``@dataclass`` generates them: fields compared in
    order and only against the same class, shown as ``Name(field=value, ...)``."""

    __slots__ = ()
    _record_plan: ClassVar[_Plan]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names, known, fields, post_init = self._record_plan
        if len(args) == len(fields) and not kwargs:  # every field given, in order: the usual
            self.__dict__.update(zip(names, args, strict=True))
            if post_init:
                self.__post_init__()  # type: ignore[attr-defined]
            return
        if len(args) > len(names) or (kwargs and (not known.issuperset(kwargs) or any(
                name in kwargs for name in names[:len(args)]))):
            _wrong_call(self, args, kwargs)
        given = dict(zip(names, args, strict=False))  # fewer arguments than parameters
        if kwargs:
            given.update(kwargs)
        values = self.__dict__  # in field order, as the generated __init__ assigns them
        for name, parameter, default, factory in fields:
            if parameter:
                if name in given:
                    values[name] = given[name]
                elif default is not MISSING:
                    values[name] = default
                elif factory is not MISSING:
                    values[name] = factory()
                else:
                    _wrong_call(self, args, kwargs)
            elif factory is not MISSING:
                values[name] = factory()
            # (an init=False field with a plain default is read from the class, as generated)
        if post_init:
            self.__post_init__()  # type: ignore[attr-defined]

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
        # Every assignment is refused, as a frozen dataclass refuses it (the shared __init__
        # fills the instance's __dict__; a field without a value can be given one once).
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
    return _shared_init(dataclass(init=False, eq=False, repr=False)(cls))


@dataclass_transform(field_specifiers=(field,))
def record(cls: type[_T]) -> type[_T]:
    """``@dataclass`` for a class deriving from :class:`Record`."""
    if not issubclass(cls, Record):
        raise TypeError(f"{cls.__qualname__} must derive from Record")
    return _shared_init(dataclass(init=False, eq=False, repr=False)(cls))


def _shared_init(cls: type[_T]) -> type[_T]:
    cls._record_plan = _plan(cls)  # type: ignore[attr-defined]
    return cls
