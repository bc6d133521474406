"""The PostgreSQL store (psycopg 3): ``pip install 'onward[postgres]'``."""

from onward.stores.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
