"""Safe names: every user-given name that becomes part of a path (a strategy, a symbol, a
timeframe, a model folder, a tenant), with its one pattern and length limit.

A name starts with a letter or digit and holds only letters, digits, '_', '-' and '.'; it never
contains '..', so it can never climb out of the folder it is joined to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FIRST = "A-Za-z0-9"
_REST = "A-Za-z0-9_.-"

# The folder under models/ that holds one folder per tenant (service-trained models); beside it,
# models trained outside the service keep `{strategy}/`, so no strategy may take this name.
TENANTS_FOLDER = "tenants"


@dataclass(frozen=True)
class NameRule:
    """Which names are safe for one purpose: `max_length` characters at most."""

    what: str  # what the name is, for messages
    max_length: int
    first: str = _FIRST  # the character class of the first character
    rest: str = _REST  # and of the others
    allowed: str = "letters, digits, '_', '-' or '.', starting with a letter or digit"
    reserved: frozenset[str] = frozenset()  # names that match but are taken
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern))

    @property
    def pattern(self) -> str:
        """The pattern as a string (pydantic `Field(pattern=...)` takes this form)."""
        return rf"^[{self.first}][{self.rest}]{{0,{self.max_length - 1}}}$"

    def matches(self, value: object) -> bool:
        return (
            isinstance(value, str)
            and ".." not in value
            and value not in self.reserved
            and bool(self.regex.match(value))
        )

    def rule(self) -> str:
        """The rule in words, for error messages."""
        taken = "".join(f", not {name!r}" for name in sorted(self.reserved))
        return f"1-{self.max_length} {self.allowed}{taken}"


# A strategy's name: a file stem under strategies/ and a folder under models/.
STRATEGY = NameRule("strategy name", 100, reserved=frozenset({TENANTS_FOLDER}))
# A market symbol: part of a data file name ({SYMBOL}_{TF}.csv).
SYMBOL = NameRule("symbol", 32)
# A request-level name (a symbol or timeframe in an API request), before the config checks it.
REQUEST_NAME = NameRule("name", 64)
# A folder under models/: a strategy folder or a `{timeframe key}` of saved versions.
MODEL_FOLDER = NameRule("model name", 128)
# A tenant: an API key's owner, and its folder under models/tenants/.
TENANT = NameRule(
    "tenant",
    64,
    first="a-z0-9",
    rest="a-z0-9_-",
    allowed="lowercase letters, digits, '-' and '_', starting with a letter or digit",
)
