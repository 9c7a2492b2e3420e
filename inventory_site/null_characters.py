"""Requests with a null character in the path, or in the query string of a page, refused
up front.

PostgreSQL text cannot hold a NUL, and psycopg2 raises ValueError (a 500) when a query
parameter contains one. No store code, SKU or username can contain one, so a path with a
NUL names nothing that exists: 404, before any view or URL converter passes it on. The
admin's filters and search, and the pages, answer a NUL in the query string 400. The
API's query parameters are read through its filtersets, whose form fields refuse a NUL
(400 naming the parameter); on a list, a parameter it does not read is a 400 naming it
too (``inventory_site.api.filters``), and elsewhere in the API it is ignored.
"""

from inventory_site.api.errors import is_api_request, json_bad_request, json_not_found

NUL = "\x00"


class RefuseNullCharactersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if NUL in request.path_info:
            return json_not_found(request)
        if not is_api_request(request) and query_has_null_character(request):
            return json_bad_request(request)
        return self.get_response(request)


def query_has_null_character(request) -> bool:
    """A NUL in any parameter's name or value (``%2500`` is an escaped percent sign)."""
    query = request.META.get("QUERY_STRING", "")
    if "%00" not in query and NUL not in query:
        return False  # every ordinary request: no parsing of the query string here
    return any(
        NUL in name or any(NUL in value for value in values) for name, values in request.GET.lists()
    )
