"""The search series against PostgreSQL with pgvector: each held-out query asked for
its ``k`` nearest rows with the distance operator the plan names, as the team's own
retrieval would ask it (an HNSW or IVFFlat index answers where one exists).

Called in the search user's own greenlet: psycopg sees gevent's monkey-patching and
waits cooperatively, so a slow database holds back only its own searches.

One connection per search user, opened on first use and dropped on any error, so a
failover is met with a fresh connection to whatever the address resolves to then.
Every call is bounded: the connection by ``connect_timeout``, the query by the
server's ``statement_timeout`` and the socket by ``tcp_user_timeout`` (a partition
that swallows packets), each the load's request timeout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

_OPERATORS = {"l2": "<->", "cosine": "<=>", "inner-product": "<#>"}


def _vector(values: Sequence[float]) -> str:
    return "[" + ",".join(repr(float(v)) for v in values) + "]"


class PgVectorSearch:
    """``search(vector, k)``: the ids of the ``k`` nearest rows, nearest first."""

    def __init__(self, settings: Mapping[str, Any], timeout: float) -> None:
        from psycopg import sql

        self.dsn = str(settings["dsn"])
        self.timeout = timeout
        operator = _OPERATORS[str(settings.get("distance", "l2"))]
        template = "SELECT {id} FROM {table} ORDER BY {embedding} {op} %s::vector LIMIT %s"
        self.query = sql.SQL(template).format(
            id=sql.Identifier(str(settings.get("id_column", "id"))),
            table=sql.Identifier(*str(settings["table"]).split(".")),
            embedding=sql.Identifier(str(settings.get("embedding_column", "embedding"))),
            op=sql.SQL(operator),
        )
        self._connection: Any = None

    def _connect(self) -> Any:
        import psycopg

        millis = max(1, int(self.timeout * 1000))
        return psycopg.connect(
            self.dsn,
            autocommit=True,
            connect_timeout=max(2, math.ceil(self.timeout)),  # libpq's floor is 2 s
            tcp_user_timeout=millis,
            options=f"-c statement_timeout={millis}",
            application_name="aidrill-load",
        )

    def search(self, vector: Sequence[float], k: int) -> list[Any]:
        if self._connection is None:
            self._connection = self._connect()
        try:
            rows = self._connection.execute(self.query, (_vector(vector), int(k))).fetchall()
        except Exception:
            self.close()
            raise
        return [row[0] for row in rows]

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # a broken connection may fail to close; it is dropped anyway
                return
