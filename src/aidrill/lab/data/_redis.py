"""Redis clients for the lab: one attempt per command, no hidden retries.

redis-py retries a failed connection three times with exponential backoff by default
(seconds per call); a drill must see a dead primary at once, and the lab's supervisor
must notice it within its health interval.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def redis_client(port: int, timeout: float = 1.0) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1",
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
