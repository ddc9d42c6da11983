"""The HTTP server: the store's API over HTTP, subscriptions as Server-Sent Events, bearer tokens
with scopes, Prometheus metrics (the `server` extra: FastAPI, uvicorn, prometheus-client).

`eventvault serve` runs it; `create_app` gives the ASGI application to embed elsewhere. Only the
command line imports this package; the HTTP client engine (`eventvault.store.http`) shares
nothing with it but the wire format.
"""
