"""The Segment-compatible ingestion API: decode, authenticate, validate, store.

Each module has one job: `decoding` turns a request body into a JSON object within the size
limits, `auth` resolves the write key, `timestamps` parses and corrects times, `validation`
turns raw messages into calls or rejections, `storage` writes them in one transaction,
`headers` reads the client IP and writes CORS headers, `views` wires them to HTTP.
"""
