"""The API's JSON parsers: DRF's, but refusing two things Python's json module accepts.

- Duplicate keys (``{"quantity": 1, "quantity": 2}``): json keeps the last one, so a
  client, a proxy's validation and the server could each read a different request.
- Nesting deeper than the interpreter's recursion limit: json raises RecursionError,
  which is no ValueError and would answer 500.

Both answer 400 ``parse_error`` like any other malformed body.

``JSONParser`` reads bodies up to Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (413 above
it), every endpoint's limit. ``LimitedJSONParser`` is for the one endpoint whose body
may be larger (a bulk stock job of 10,000 items): it reads the body itself, up to the
limit its own setting names.
"""

import codecs
import io
import json

from django.conf import settings
from rest_framework import exceptions, parsers, renderers, status
from rest_framework.exceptions import ParseError
from rest_framework.settings import api_settings
from rest_framework.utils.json import strict_constant


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


class DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(f"duplicate key {json.dumps(key)} in an object")


def object_without_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(key)
        result[key] = value
    return result


def parse_json(stream, parser_context, *, strict: bool):
    """The JSON document in ``stream``, read with the rules above."""
    encoding = parsers.get_encoding(parser_context or {})
    try:
        return json.load(
            codecs.getreader(encoding)(stream),
            object_pairs_hook=object_without_duplicate_keys,
            parse_constant=strict_constant if strict else None,
        )
    except RecursionError:
        raise ParseError("JSON parse error - the body is nested too deeply.") from None
    except ValueError as error:
        raise ParseError(f"JSON parse error - {error}") from error


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return parse_json(stream, parser_context, strict=self.strict)


class LimitedJSONParser(parsers.BaseParser):
    """JSON bodies up to ``settings.<limit_setting>`` bytes, 413 above, whatever
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` says.

    Deliberately no subclass of DRF's JSONParser: for one of those DRF reads
    ``request.body`` first, which applies Django's global limit; any other parser gets
    the request's stream, which this one reads only up to its own limit (one byte more
    tells a body over it). A Content-Length over the limit is refused unread.
    """

    media_type = "application/json"
    renderer_class = renderers.JSONRenderer
    strict = api_settings.STRICT_JSON
    limit_setting: str

    def parse(self, stream, media_type=None, parser_context=None):
        limit = getattr(settings, self.limit_setting)
        request = (parser_context or {}).get("request")
        if request is not None and _declared_length(request) > limit:
            raise _too_large(limit)
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise _too_large(limit)
        return parse_json(io.BytesIO(body), parser_context, strict=self.strict)


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.")
