"""Postgres: pool lifecycle, migrations, and one query module per domain."""
