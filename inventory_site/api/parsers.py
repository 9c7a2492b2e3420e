"""The API's JSON parser: DRF's, but refusing two things Python's json module accepts.

- Duplicate keys (``{"quantity": 1, "quantity": 2}``): json keeps the last one, so a
  client, a proxy's validation and the server could each read a different request.
- Nesting deeper than the interpreter's recursion limit: json raises RecursionError,
  which is no ValueError and would answer 500.

Both answer 400 ``parse_error`` like any other malformed body.
"""

import codecs
import json

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant


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


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            return json.load(
                codecs.getreader(encoding)(stream),
                object_pairs_hook=object_without_duplicate_keys,
                parse_constant=strict_constant if self.strict else None,
            )
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from error
