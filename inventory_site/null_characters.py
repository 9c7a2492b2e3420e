"""Requests with a null character in the path or the query string, refused up front.

PostgreSQL text cannot hold a NUL, and psycopg2 raises ValueError (a 500) when a query
parameter contains one. No store code, SKU, username, filter or search term can contain
one, so such a request names nothing that exists: a path answers 404, a query string 400,
before any view, admin filter or converter passes the value to the database.
"""

from django.http import JsonResponse

from inventory_site.api.errors import is_api_request, json_bad_request, json_not_found

NUL = "\x00"


class RefuseNullCharactersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if NUL in request.path_info:
            return json_not_found(request)
        names = parameters_with_null_characters(request)
        if names:
            return refuse_parameters(request, names)
        return self.get_response(request)


def parameters_with_null_characters(request) -> list[str]:
    """The query parameters holding a NUL in their name or a value, named with ``%00``."""
    query = request.META.get("QUERY_STRING", "")
    if "%00" not in query and NUL not in query:
        return []  # every ordinary request: no parsing of the query string here
    return [
        name.replace(NUL, "%00")
        for name, values in request.GET.lists()
        if NUL in name or any(NUL in value for value in values)
    ]


def refuse_parameters(request, names: list[str]):
    if not is_api_request(request):
        return json_bad_request(request)
    return JsonResponse(
        {
            "detail": f"The request has invalid fields: {', '.join(names)}.",
            "code": "invalid",
            "errors": {name: ["Null characters are not allowed."] for name in names},
        },
        status=400,
    )
