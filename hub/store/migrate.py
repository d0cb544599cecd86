"""Schema migrations: the numbered SQL files in `migrations/`, applied once each.

Runs in the namespace's schema, creating it if needed. Concurrent migrators
(several hub processes starting together, `hub run --migrate`) are
serialised by an advisory lock; all of them run in one transaction with
their bookkeeping rows.

`check_schema()` is every role's first step: a database without the
namespace's schema, or with a schema older than the code, stops the start
with a ConfigError naming `hub migrate` (exit 2), instead of a hub that
says it is ready and then fails every message. A database that is away at
start is waited for like one that goes away later (`health.DatabaseGate`),
and its schema is checked when it is back.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import TYPE_CHECKING

import asyncpg
import structlog

from hub.errors import ConfigError
from hub.store.pool import Connection, DatabaseAway, Pool, database_errors, is_away

if TYPE_CHECKING:
    from hub.store.health import DatabaseGate

log = structlog.get_logger(__name__)

_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@functools.cache
def migrations() -> tuple[tuple[int, str, str], ...]:
    """(number, name, sql) of every migration, in order: read once (every `/readyz` and
    every probe of the database compares the schema with them)."""
    found = []
    for entry in resources.files("hub.store").joinpath("migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return tuple(sorted(found))


async def migrate(url: str, namespace: str) -> list[str]:
    """Apply what is missing; return the names of the migrations applied now."""
    async with database_errors():
        connection = await asyncpg.connect(url, timeout=10)
    try:
        return await _apply(connection, namespace)
    finally:
        await connection.close()


async def _apply(connection: asyncpg.Connection, namespace: str) -> list[str]:
    schema = _identifier(namespace)
    applied_now = []
    async with connection.transaction():
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{namespace}"
        )
        await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await connection.execute(
            f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
            " number integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {
            r["number"]
            for r in await connection.fetch(f"SELECT number FROM {schema}.schema_migrations")
        }
        await connection.execute(f"SET LOCAL search_path TO {schema}")
        for number, name, sql in migrations():
            if number in done:
                continue
            await connection.execute(sql)
            await connection.execute(
                "INSERT INTO schema_migrations (number, name) VALUES ($1, $2)", number, name
            )
            applied_now.append(f"{number:03d}_{name}")
            log.info("migration applied", namespace=namespace, migration=applied_now[-1])
    return applied_now


async def schema_problem(connection: Connection, namespace: str) -> str | None:
    """Why this database cannot serve the code's namespace, or None when it can."""
    schema = _identifier(namespace)
    try:
        applied = {
            r["number"]
            for r in await connection.fetch(f"SELECT number FROM {schema}.schema_migrations")
        }
    except (
        asyncpg.exceptions.UndefinedTableError,
        asyncpg.exceptions.InvalidSchemaNameError,
    ):
        return (
            f"the database has no schema for namespace {namespace!r}: run `hub migrate` "
            "first (or start with --migrate)"
        )
    missing = [f"{n:03d}_{name}" for n, name, _ in migrations() if n not in applied]
    if missing:
        return (
            f"the schema of namespace {namespace!r} is older than this hub (not applied: "
            f"{', '.join(missing)}): run `hub migrate` first (or start with --migrate)"
        )
    return None


async def check_schema(pool: Pool, namespace: str, gate: DatabaseGate | None = None) -> None:
    """Refuse (ConfigError) a schema missing or older than the code.

    With the database away: close `gate` (its probe checks the schema when the
    database is back) and return; without a gate, raise DatabaseAway.
    """
    try:
        async with database_errors(), pool.acquire() as connection:
            problem = await schema_problem(connection, namespace)
    except Exception as exc:
        if not is_away(exc):
            raise
        if gate is None:
            raise DatabaseAway(f"the database is unavailable: {exc!r}") from exc
        log.warning("database unavailable at start: waiting for it", namespace=namespace)
        gate.close(exc)
        return
    if problem is not None:
        raise ConfigError(problem)


async def drop(url: str, namespace: str) -> None:
    """Remove the namespace's schema and everything in it (tests, teardown)."""
    connection = await asyncpg.connect(url, timeout=10)
    try:
        await connection.execute(f"DROP SCHEMA IF EXISTS {_identifier(namespace)} CASCADE")
    finally:
        await connection.close()


def _identifier(namespace: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", namespace):
        raise ConfigError(f"namespace {namespace!r} cannot name a schema")
    return f'"{namespace}"'
