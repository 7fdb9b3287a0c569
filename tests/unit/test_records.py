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


@frozen
class Checked(Frozen):
    low: int
    high: int = 8
    span: int = field(init=False, default=0)
    notes: list[str] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("low above high")
        object.__setattr__(self, "span", self.high - self.low)


@dataclass(frozen=True)
class CheckedGenerated:
    low: int
    high: int = 8
    span: int = field(init=False, default=0)
    notes: list[str] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("low above high")
        object.__setattr__(self, "span", self.high - self.low)


@pytest.mark.parametrize("call", [
    lambda cls: cls(1, 2), lambda cls: cls(1), lambda cls: cls(high=3, low=1),
    lambda cls: cls(1, high=3),
])
def test_the_shared_init_binds_as_the_generated_one(call) -> None:  # type: ignore[no-untyped-def]
    shared, generated = call(Checked), call(CheckedGenerated)
    assert vars(shared) == vars(generated)
    assert list(vars(shared)) == list(vars(generated))  # assigned in field order
    assert shared.notes == [] and shared.notes is not Checked(1).notes


@pytest.mark.parametrize("call", [
    lambda cls: cls(), lambda cls: cls(1, 2, 3), lambda cls: cls(1, low=2),
    lambda cls: cls(1, span=2), lambda cls: cls(1, other=2), lambda cls: cls(high=2),
    lambda cls: cls(5, 1),
])
def test_a_wrong_call_fails_as_with_the_generated_init(call) -> None:  # type: ignore[no-untyped-def]
    kind, message = _error(lambda: call(Checked))
    assert (kind, message.replace("Checked.", "CheckedGenerated.")) == \
        _error(lambda: call(CheckedGenerated))
