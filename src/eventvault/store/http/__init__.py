"""The HTTP client engine: a store served by `eventvault serve`, opened as `http://host:port`.

Its driver, httpx, comes with the `client` extra; the engine module is imported only when an
http(s) URL is opened. `wire` holds the wire format it shares with the server.
"""
