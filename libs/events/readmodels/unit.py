"""What a read model is: one table, one frozen row type, and the events that fill it.

A read model module declares its table (on `columns.metadata`), its row dataclass (same field
names as the table's columns, plus `to_row()`), the functions that turn events into rows, and
ends with one `ReadModel(...)`. `registry.py` lists them; the stores' append, the projection,
rebuild (refold, compare, replace), `store.find` and the schema tests work from that list and
never name a table themselves.

Two ways events reach a read model:
- `derive`: from a stream event the trainings fold ACCEPTED (not a zombie attempt's, not after a
  terminal state), given the training's state after that event and the event's log position;
  returns the row to write, or None.
- `record`: from an event the log does not keep (catalog `STORED = False`), straight to a row.
  Such a read model cannot be rebuilt from the log, so it must say why in `ephemeral`.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import sqlalchemy as sa


class Row(Protocol):
    def to_row(self) -> dict[str, Any]: ...


RowT = TypeVar("RowT", bound=Row)
# (the training's state after the event — a TrainingState —, the event, its log position).
# The event argument is the specific class the mapping's key names, hence Any.
Derive = Callable[[Any, Any, int], "RowT | None"]
Record = Callable[[Any], RowT]


@dataclass(frozen=True, eq=False)
class ReadModel(Generic[RowT]):
    table: sa.Table
    row_type: type[RowT]
    derive: Mapping[str, Derive[RowT]] = field(default_factory=dict)  # event type -> rows
    record: Mapping[str, Record[RowT]] = field(default_factory=dict)  # unstored event type -> row
    # A row, once written, is never replaced (a model version names one file forever).
    write_once: bool = False
    # Replace a stored row only with one at least as new by this column (late heartbeats).
    newest_by: str | None = None
    # Why the read model is not rebuilt from the log; None: rebuild refolds and compares it.
    ephemeral: str | None = None
    key: Callable[[RowT], Hashable] = field(init=False)
    _fields: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        columns = [c.name for c in self.table.columns]
        names = tuple(f.name for f in dataclasses.fields(self.row_type))  # type: ignore[arg-type]
        if sorted(names) != sorted(columns):
            raise ValueError(
                f"{self.row_type.__name__} fields {sorted(names)} do not match the columns of "
                f"{self.table.name}: {sorted(columns)}"
            )
        if self.record and self.ephemeral is None:
            raise ValueError(f"{self.table.name} records unstored events: say why in ephemeral")
        keys = [c.name for c in self.table.primary_key.columns]
        object.__setattr__(self, "key", operator.attrgetter(*keys))
        object.__setattr__(self, "_fields", names)

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def rebuilt(self) -> bool:
        return self.ephemeral is None

    def load(self, row: Any) -> RowT:
        """The row object for a database row (or any mapping with the column names)."""
        mapping = row._mapping if hasattr(row, "_mapping") else row
        return self.row_type(**{name: mapping[name] for name in self._fields})

    def merge(self, stored: RowT | None, new: RowT) -> RowT:
        """What a table holding `stored` holds after `new` is written (the SQL upsert's rule)."""
        if stored is None:
            return new
        if self.write_once:
            return stored
        if self.newest_by is not None and getattr(new, self.newest_by) < getattr(
            stored, self.newest_by
        ):
            return stored
        return new
