"""Calendar quarters: ``2026-Q4`` and the UTC instants that bound it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from aidrill.errors import InputError

_PATTERN = re.compile(r"^(\d{4})-Q([1-4])$")


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        match = _PATTERN.match(text.strip())
        if not match:
            raise InputError(f"expected a quarter such as 2026-Q4, got {text!r}", field="--quarter")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, moment: datetime) -> Quarter:
        return cls(moment.year, (moment.month - 1) // 3 + 1)

    @classmethod
    def current(cls) -> Quarter:
        return cls.of(datetime.now(UTC))

    @property
    def start(self) -> datetime:
        return datetime(self.year, 3 * self.number - 2, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        following = (
            Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)
        )
        return following.start

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def __str__(self) -> str:
        return f"{self.year}-Q{self.number}"
