"""`outbox.add_leases`: a batch's in-flight keys claimed in one Redis round trip are the keys `cache.add` and
`cache.get` see — each claimed once, whoever claims it first — and with another cache backend one by one."""

import pytest
from django.core.cache import cache, caches

from inbox import outbox

LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "leases"}}


@pytest.fixture(params=["redis", "locmem"])
def backend(request, settings):
    if request.param == "locmem":
        settings.CACHES = LOCMEM
    keys = [f"outbox:test-lease:{request.param}:{n}" for n in range(4)]
    cache.delete_many(keys)
    yield keys
    cache.delete_many(keys)


def test_each_key_is_claimed_once_whoever_claims_it_first(backend):
    keys = backend
    assert cache.add(keys[1], 1, timeout=30)  # another task's claim, the ordinary way

    assert outbox.add_leases(keys, timeout=30) == [True, False, True, True]

    assert all(cache.get(key) == 1 for key in keys)
    assert not cache.add(keys[0], 1, timeout=30)  # claimed by the pipeline: refused to `cache.add`
    assert outbox.add_leases(keys, timeout=30) == [False] * 4


def test_the_leases_expire_with_the_timeout():
    key = "outbox:test-lease:ttl"
    cache.delete(key)
    backend = caches["default"]
    assert outbox.add_leases([key], timeout=30) == [True]
    ttl = backend._cache.get_client().ttl(backend.make_and_validate_key(key))
    assert 0 < ttl <= 30
    cache.delete(key)


def test_no_keys_no_call():
    assert outbox.add_leases([], timeout=30) == []
