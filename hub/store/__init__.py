"""Everything the hub keeps in PostgreSQL: pool, migrations, queries.

No other package imports asyncpg. Every object lives in the schema named by
the namespace, so that instances and test runs never collide.
"""
