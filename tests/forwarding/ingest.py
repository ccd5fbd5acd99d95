"""Calls stored as ingestion stores them: a /v1/batch through the API, with Django's test client."""

import base64
import json


def post_batch(client, key, messages):
    """POST the messages as one batch with the write key; asserts they were accepted."""
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    body = json.dumps({"batch": list(messages)})
    response = client.post("/v1/batch", body, content_type="application/json", HTTP_AUTHORIZATION=auth)
    assert response.status_code == 200, response.content
    return response
