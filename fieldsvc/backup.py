"""Backups that move between SQLite and PostgreSQL: every table's rows as gzipped JSON lines.

The file starts with a header line (format, schema revision, row counts), then, for each table
in dependency order, a line naming the table and its columns followed by one JSON array per row.
Values are written as JSON types; dates and times as ISO 8601 text (times in UTC), read back
through each column's type, so what SQLite stores naively comes back the same on PostgreSQL and
the other way round. A last line marks the end, so a file cut short is refused. Rows stream in
both directions: ten million tally lines never sit in memory.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import gzip
import json
from collections.abc import Callable, Iterator
from typing import IO, Any

from sqlalchemy import Date, DateTime, Integer, LargeBinary, Numeric, Table, func, select, text

from fieldsvc.extensions import db

FORMAT = "fieldsvc-backup"
VERSION = 1
BATCH = 5000


class BackupError(RuntimeError):
    """A backup file that cannot be restored here (what to do is in the message)."""


def _revision() -> str | None:
    from fieldsvc.web.services import migration_state

    current, _head = migration_state()
    return current


def _tables() -> list[Table]:
    return list(db.metadata.sorted_tables)


def _dump_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # SQLite gives back naive UTC
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def _loader(column: Any) -> Callable[[Any], Any]:
    kind = column.type
    if isinstance(kind, DateTime):
        return lambda v: None if v is None else dt.datetime.fromisoformat(v)
    if isinstance(kind, Date):
        return lambda v: None if v is None else dt.date.fromisoformat(v)
    if isinstance(kind, Numeric) and kind.asdecimal:
        return lambda v: None if v is None else decimal.Decimal(v)
    if isinstance(kind, LargeBinary):
        return lambda v: None if v is None else base64.b64decode(v)
    return lambda v: v


def write_backup(out: IO[bytes], echo: Callable[[str], None] = lambda message: None) -> dict:
    """Write every table of the current database to `out`; return the header (row counts)."""
    if db.engine.dialect.name == "postgresql":
        # One snapshot for every table, while the phones keep sending.
        db.session.rollback()
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    tables = _tables()
    counts = {table.name: db.session.scalar(select(func.count()).select_from(table))
              for table in tables}
    header = {"format": FORMAT, "version": VERSION, "revision": _revision(),
              "dialect": db.engine.dialect.name,
              "created_at": dt.datetime.now(dt.UTC).isoformat(), "tables": counts}
    with gzip.GzipFile(fileobj=out, mode="wb") as stream:
        stream.write(_line(header))
        for table in tables:
            columns = [column.name for column in table.columns]
            stream.write(_line({"table": table.name, "columns": columns}))
            order = list(table.primary_key.columns) or list(table.columns)
            result = db.session.execute(select(*table.columns).order_by(*order)
                                        .execution_options(yield_per=BATCH))
            for row in result:
                stream.write(_line([_dump_value(value) for value in row]))
            echo(f"{table.name}: {counts[table.name]} rows")
        stream.write(_line({"end": True}))  # a file without it was cut short
    return header


def _line(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def _read(stream: IO[bytes]) -> Iterator[Any]:
    for raw in stream:
        yield json.loads(raw)


def restore_backup(source: IO[bytes], *, replace: bool = False,
                   echo: Callable[[str], None] = lambda message: None) -> dict:
    """Load a backup into the current (migrated) database in one transaction; the caller commits.

    Refuses a file of another schema revision, and a database that already holds data unless
    `replace` (then every table is emptied first).
    """
    with gzip.GzipFile(fileobj=source, mode="rb") as stream:
        lines = _read(stream)
        try:
            header = next(lines)
        except (StopIteration, OSError, ValueError) as error:
            raise BackupError(f"This is not a fieldsvc backup ({error or 'empty file'}).") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise BackupError("This is not a fieldsvc backup (no fieldsvc-backup header).")
        revision = _revision()
        if header.get("revision") != revision:
            raise BackupError(
                f"The backup is of schema revision {header.get('revision')}, the database is at "
                f"{revision}: run `flask --app wsgi db upgrade` (or use the fieldsvc version "
                "that made the backup).")
        tables = {table.name: table for table in _tables()}
        unknown = set(header["tables"]) - set(tables)
        if unknown:
            raise BackupError(f"The backup has tables this fieldsvc does not: {sorted(unknown)}.")
        stored = sum(db.session.scalar(select(func.count()).select_from(t)) for t in tables.values())
        if stored and not replace:
            raise BackupError(f"The database already holds {stored} rows; restore into an empty, "
                              "migrated database, or add --replace to overwrite it.")
        for table in reversed(list(tables.values())):
            db.session.execute(table.delete())
        table: Table | None = None
        names: list[str] = []
        loaders: list[Callable[[Any], Any]] = []
        batch: list[dict[str, Any]] = []
        restored: dict[str, int] = {}
        ended = False

        def flush() -> None:
            if table is not None and batch:
                db.session.execute(table.insert(), batch)
                restored[table.name] = restored.get(table.name, 0) + len(batch)
                batch.clear()

        for item in lines:
            if isinstance(item, dict) and item.get("end") is True:
                ended = True
                break
            if isinstance(item, dict):
                flush()
                if table is not None:
                    echo(f"{table.name}: {restored.get(table.name, 0)} rows")
                table = tables[item["table"]]
                names = item["columns"]
                missing = set(names) - set(table.columns.keys())
                if missing:
                    raise BackupError(f"{table.name}: unknown columns {sorted(missing)}.")
                loaders = [_loader(table.columns[name]) for name in names]
                continue
            batch.append({name: load(value)
                          for name, load, value in zip(names, loaders, item, strict=True)})
            if len(batch) >= BATCH:
                flush()
        flush()
        if table is not None:
            echo(f"{table.name}: {restored.get(table.name, 0)} rows")
    if not ended:
        raise BackupError("The file ends before its last table; it is truncated.")
    for name, expected in header["tables"].items():
        if restored.get(name, 0) != expected:
            raise BackupError(f"{name}: the file holds {restored.get(name, 0)} rows of "
                              f"{expected}; it is truncated.")
    _reset_sequences(tables.values())
    return header


def _reset_sequences(tables: Any) -> None:
    """Let PostgreSQL hand out ids after the restored ones (SQLite follows max(rowid) itself)."""
    if db.engine.dialect.name != "postgresql":
        return
    for table in tables:
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not isinstance(keys[0].type, Integer):
            continue
        sequence = db.session.scalar(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                     {"t": table.name, "c": keys[0].name})
        if sequence:
            db.session.execute(text(
                f'SELECT setval(:s, coalesce((SELECT max("{keys[0].name}") FROM "{table.name}"), 0)'
                f' + 1, false)'), {"s": sequence})
