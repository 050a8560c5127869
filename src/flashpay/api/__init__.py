"""The HTTP API (FastAPI): versioned under /v1, one router per domain."""
