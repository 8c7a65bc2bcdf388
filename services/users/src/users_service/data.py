"""The seeded, read-only user table.

The gateway's tests depend on these exact rows; do not change them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class UserRecord:
    """One user row, mirroring the ``User`` message."""

    name: str
    age: int
    email: str


USERS: Mapping[int, UserRecord] = MappingProxyType(
    {
        1: UserRecord(name="Alice", age=30, email="alice@example.com"),
        2: UserRecord(name="Bob", age=25, email="bob@example.com"),
        3: UserRecord(name="Carol", age=41, email="carol@example.com"),
    }
)


def get_users(user_ids: Iterable[int]) -> list[UserRecord]:
    """Return the users for ``user_ids`` in request order, skipping unknown ids.

    Duplicate ids yield duplicate rows, as the request asked for them.
    """
    return [USERS[uid] for uid in user_ids if uid in USERS]
