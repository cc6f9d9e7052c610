"""A JSON renderer on orjson: answers of thousands of records render in a fraction of the time."""

import orjson
from rest_framework.renderers import JSONRenderer


class OrjsonRenderer(JSONRenderer):
    """``application/json`` through orjson (compact, UTF-8, the same JSON as DRF's)."""

    def render(self, data: object, accepted_media_type: str | None = None,
               renderer_context: dict | None = None) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data)
