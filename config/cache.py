"""Django's Redis cache, with one redis-py client per connection pool instead of one per operation.

Django's `RedisCacheClient.get_client` builds a new `redis.Redis` for every cache call; redis-py 5+ fills a dict of
~170 response callbacks in each constructor, which made a cache write cost about as much CPU as the webhook's own
ledger INSERT (bench/README.md, "Ingest 1/POST: the fixed cost"). A client is a thin, thread-safe wrapper around its
pool (the pool checks the process id, so a forked worker still opens its own connections): keeping one per pool is
what Django would do if the constructor were cheap.
"""

from __future__ import annotations

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))  # the pools live in self._pools for the client's lifetime
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
