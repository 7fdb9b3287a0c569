"""smpsim.records: its classes behave as @dataclass and @dataclass(frozen=True) classes do."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import dataclass, field

import pytest

from smpsim.records import Frozen, Record, frozen, record


@frozen
class Shared(Frozen):
    name: str
    size: int = 4
    tags: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Generated:
    name: str
    size: int = 4
    tags: tuple[str, ...] = field(default_factory=tuple)


def _error(action):  # type: ignore[no-untyped-def]
    with pytest.raises(Exception) as info:
        action()
    return type(info.value), str(info.value)


def test_same_equality_hash_and_repr_as_a_frozen_dataclass() -> None:
    a, b = Shared("slot0", 8, ("x",)), Generated("slot0", 8, ("x",))
    assert repr(a) == repr(b).replace("Generated", "Shared")
    assert hash(a) == hash(b)
    assert a == Shared("slot0", 8, ("x",)) and a != Shared("slot0", 9, ("x",))
    assert a != b and (a == b) is (b == a) is False  # another class never compares equal
    assert Shared("s") == Shared("s", 4, ())


@pytest.mark.parametrize("cls", [Shared, Generated])
def test_refuses_every_assignment_and_deletion(cls: type) -> None:
    value = cls("slot0")
    assert _error(lambda: setattr(value, "size", 3)) == \
        (dataclasses.FrozenInstanceError, "cannot assign to field 'size'")
    assert _error(lambda: setattr(value, "other", 3)) == \
        (dataclasses.FrozenInstanceError, "cannot assign to field 'other'")
    assert _error(lambda: delattr(value, "name")) == \
        (dataclasses.FrozenInstanceError, "cannot delete field 'name'")
    assert value.size == 4


def test_dataclass_tools_copies_and_pickles() -> None:
    value = Shared("slot0", 8)
    assert dataclasses.is_dataclass(value)
    assert dataclasses.asdict(value) == {"name": "slot0", "size": 8, "tags": ()}
    assert dataclasses.replace(value, size=9) == Shared("slot0", 9)
    assert copy.deepcopy(value) == value == pickle.loads(pickle.dumps(value))
    missing = "__init__() missing 1 required positional argument: 'name'"
    assert _error(Shared) == (TypeError, f"Shared.{missing}")
    assert _error(Generated) == (TypeError, f"Generated.{missing}")


def test_a_class_must_derive_from_frozen() -> None:
    with pytest.raises(TypeError, match="must derive from Frozen"):
        @frozen
        class Plain:
            name: str


@record
class SharedRecord(Record):
    name: str
    tags: list[str] = field(default_factory=list)


@dataclass
class GeneratedRecord:
    name: str
    tags: list[str] = field(default_factory=list)


def test_a_record_is_a_mutable_dataclass_compared_by_its_fields() -> None:
    a, b = SharedRecord("slot0", ["x"]), GeneratedRecord("slot0", ["x"])
    assert repr(a) == repr(b).replace("GeneratedRecord", "SharedRecord")
    assert a == SharedRecord("slot0", ["x"]) and a != b
    a.name = "slot1"
    assert a == SharedRecord("slot1", ["x"]) != SharedRecord("slot0", ["x"])
    for value in (a, b):
        with pytest.raises(TypeError, match="unhashable type"):
            hash(value)
    assert SharedRecord("s").tags == [] and SharedRecord("s").tags is not SharedRecord("s").tags
    with pytest.raises(TypeError, match="must derive from Record"):
        @record
        class Plain:
            name: str
