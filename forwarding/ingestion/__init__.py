"""The Segment-compatible ingestion API: decode, authenticate, validate, store.

Each module has one job: `decoding` turns a request body into a JSON object within the size
limits, `auth` resolves the write key, `key_limit` counts its requests against
RELAY_INGEST_RATE_LIMIT, `timestamps` parses and corrects times, `validation`
turns raw messages into calls or rejections, `storage` writes them in one transaction,
`rejections` stores rejections within their per-minute cap, `columns` fits values to their
columns, `headers` reads the client IP and writes CORS headers, `hosts` answers a Host outside
DJANGO_ALLOWED_HOSTS with JSON, `views` wires them to HTTP.

For websites: `browser` writes analytics.js's settings document and knows the relay's public URL,
`analytics_js` serves the vendored analytics.js and its chunks, `rudderstack` writes the source
configuration RudderStack's browser SDK asks for, `snippets` writes the copy-paste snippets the
Source admin shows.
"""
