"""The error hierarchy: every error in exactly one tier, and the bases code relies on."""

from __future__ import annotations

import pytest

import eventvault.errors as errors
from eventvault.errors import (
    ERROR_KINDS,
    BadInputError,
    ConflictError,
    CorruptEventError,
    EventVaultError,
    IntegrityError,
    InvalidArgumentError,
    InvalidEventError,
    NotFoundError,
    StorageError,
    StreamNotFoundError,
    error_kind,
)

TIERS = tuple(ERROR_KINDS)


def _classes() -> list[type[BaseException]]:
    found = [getattr(errors, name) for name in errors.__all__]
    return [value for value in found if isinstance(value, type)]


def test_the_tiers_are_the_five_kinds_of_failure() -> None:
    assert (BadInputError, ConflictError, NotFoundError, IntegrityError, StorageError) == TIERS
    assert list(ERROR_KINDS.values()) == [
        "bad-input",
        "conflict",
        "not-found",
        "integrity",
        "storage",
    ]


@pytest.mark.parametrize("cls", _classes(), ids=lambda cls: cls.__name__)
def test_every_error_but_the_root_belongs_to_exactly_one_tier(cls: type[BaseException]) -> None:
    assert issubclass(cls, EventVaultError)
    if cls is EventVaultError:
        assert not any(issubclass(cls, tier) for tier in TIERS)
        return
    tiers = [tier.__name__ for tier in TIERS if issubclass(cls, tier)]
    assert len(tiers) == 1, tiers


def test_error_kind_names_the_tier_of_an_error_and_nothing_for_others() -> None:
    assert error_kind(StreamNotFoundError("account-1")) == "not-found"
    assert error_kind(CorruptEventError("a-1", 0, "damaged")) == "integrity"
    assert error_kind(EventVaultError("untiered")) is None
    assert error_kind(ValueError("foreign")) is None


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("InvalidStreamNameError", ValueError),
        ("InvalidEventError", ValueError),
        ("PayloadTooLargeError", ValueError),
        ("PayloadTooDeepError", ValueError),
        ("InvalidExpectedVersionError", TypeError),
        ("InvalidURLError", ValueError),
        ("InvalidArgumentError", ValueError),
        ("CorruptEventError", ValueError),
        ("EventRegistrationError", TypeError),
        ("UnknownEventTypeError", LookupError),
        ("UnregisteredEventError", TypeError),
        ("AggregateDefinitionError", TypeError),
        ("MissingHandlerError", TypeError),
        ("AggregateNotFoundError", LookupError),
        ("AggregateQueryError", ValueError),
    ],
)
def test_errors_keep_the_builtin_bases_that_callers_catch(name: str, base: type) -> None:
    assert issubclass(getattr(errors, name), base)


def test_an_argument_error_is_bad_input_but_not_an_invalid_event() -> None:
    error = InvalidArgumentError("limit", -1, "must be an int >= 0 or None, not -1")
    assert isinstance(error, BadInputError)
    assert isinstance(error, ValueError)
    assert not isinstance(error, InvalidEventError)
    assert (error.argument, error.value) == ("limit", -1)
    assert str(error) == "limit must be an int >= 0 or None, not -1"


def test_the_cli_takes_stream_not_found_from_the_one_hierarchy() -> None:
    from eventvault.cli import errors as cli_errors

    assert cli_errors.StreamNotFoundError is StreamNotFoundError
