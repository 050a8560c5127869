"""The HTTP kernel (FastAPI): what every router shares, below the domains.

Dependencies (the caller, the platform, the Idempotency-Key), the error object, pagination,
security, the idempotency middleware, the body limit, the access log, health and the shared field
types. It imports no domain: the domains build their routers on it, and the composition root
(``flashpay.app``) wires them into one app under ``/v1`` (docs/reference/architecture.md).
"""
