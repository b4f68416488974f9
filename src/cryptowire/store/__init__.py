"""The SQL store: API keys (and later tokens, cursors, events...) in SQLite or Postgres.

``await SqlStore.open(url)`` migrates the database to the newest schema; see ``sql.py``.
"""

from cryptowire.store.keys import VALID_SCOPES, ApiKey
from cryptowire.store.sql import SqlStore

__all__ = ["VALID_SCOPES", "ApiKey", "SqlStore"]
