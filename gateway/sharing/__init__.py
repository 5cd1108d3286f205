"""State shared by every worker and replica through Redis, when `GATEWAY_REDIS_URL` is set.

Redis is an optimisation, never a dependency: every operation here has an in-process
answer to fall back on, and a circuit breaker stops asking a Redis that fails.
"""
