"""The Redis fixtures (redis_url, prefix, private_redis) are in tests/integration/conftest.py."""
