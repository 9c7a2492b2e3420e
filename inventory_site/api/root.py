"""/api/v1/, the API's front door, and the names the browsable API shows for its views.

The root lists where everything is, so that a client (or a person in a browser) can start
from one URL: absolute URLs for the top-level lists, and URL templates (``{code}``,
``{sku}``, ...) for the endpoints under a store or a product. It is open to anyone, as
the schema and the docs are: it says what exists, not what is in it.
"""

import re
import uuid
from urllib.parse import unquote

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse

from .views import ApiView

TOP_LEVEL = {
    "stores": "store-list",
    "products": "product-list",
    "audit": "audit-event-list",
    "auth_token": "auth-token",
    "schema": "api-schema",
    "docs": "api-docs",
}
# Name in the answer: (URL name, its parameters).
STORE_ENDPOINTS = {
    "store": ("store-detail", "code"),
    "members": ("store-member-list", "code"),
    "member": ("store-member-detail", "code", "username"),
    "stock": ("stock-level-list", "code"),
    "stock_level": ("stock-level-detail", "code", "sku"),
    "receive": ("stock-receive", "code", "sku"),
    "adjust": ("stock-adjust", "code", "sku"),
    "set_count": ("stock-set", "code", "sku"),
    "purchase": ("stock-purchase", "code", "sku"),
    "transfers": ("transfer-create", "code"),
    "bulk": ("bulk-job-create", "code"),
    "movements": ("movement-list", "code"),
    "events": ("stock-event-list", "code"),
    "reservations": ("reservation-list", "code"),
    "reservation": ("reservation-detail", "code", "reservation_id"),
    "reservation_commit": ("reservation-commit", "code", "reservation_id"),
    "reservation_release": ("reservation-release", "code", "reservation_id"),
}
JOB_ENDPOINTS = {
    "job": ("bulk-job-detail", "job_id"),
}
PRODUCT_ENDPOINTS = {
    "product": ("product-detail", "sku"),
    "availability": ("product-availability", "sku"),
}
# A parameter whose converter refuses "{name}" is reversed with this value, which is then
# replaced by the placeholder.
STAND_INS = {"reservation_id": str(uuid.UUID(int=0)), "job_id": str(uuid.UUID(int=0))}


@extend_schema(exclude=True)  # not an operation: the schema itself lists the same
class ApiRootApi(ApiView):
    """Every endpoint of the API: follow the links, or fill in the URL templates."""

    permission_classes = [AllowAny]
    name = "API root"

    def get(self, request):
        return Response(
            {
                **{key: reverse(name, request=request) for key, name in TOP_LEVEL.items()},
                "store_endpoints": url_templates(request, STORE_ENDPOINTS),
                "product_endpoints": url_templates(request, PRODUCT_ENDPOINTS),
                "job_endpoints": url_templates(request, JOB_ENDPOINTS),
            }
        )


def url_templates(request, endpoints: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """{name: the absolute URL with ``{parameter}`` where each parameter goes}."""
    return {
        key: url_template(request, url_name, parameters)
        for key, (url_name, *parameters) in endpoints.items()
    }


def url_template(request, url_name: str, parameters: list[str]) -> str:
    kwargs = {name: STAND_INS.get(name, f"{{{name}}}") for name in parameters}
    url = unquote(reverse(url_name, kwargs=kwargs, request=request))
    for name in parameters:
        if name in STAND_INS:
            url = url.replace(STAND_INS[name], f"{{{name}}}")
    return url


# --- Names in the browsable API --------------------------------------------------------

CLASS_SUFFIXES = ("APIView", "ApiView", "Api", "View")
LIST_WORDS = ("List", "Create")
DETAIL_WORDS = ("Detail",)


def view_name(view) -> str:
    """The name of ``view`` in the browsable API's title and breadcrumbs, and in OPTIONS
    answers (DRF's ``VIEW_NAME_FUNCTION``).

    Read from the class name, as DRF does, but as a person would say it:
    ``StockLevelListApi`` is "Stock levels", ``StoreDetailApi`` "Store",
    ``TransferCreateApi`` "Transfers", ``StockPurchaseApi`` "Stock purchase". A view
    with a ``name`` attribute (the root, a viewset) keeps it.
    """
    name = getattr(view, "name", None)
    if name is not None:
        return name
    class_name = type(view).__name__
    for suffix in CLASS_SUFFIXES:
        if class_name.endswith(suffix) and class_name != suffix:
            class_name = class_name.removesuffix(suffix)
            break
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", class_name)
    if len(words) > 1 and words[-1] in LIST_WORDS:
        words = [*words[:-2], plural(words[-2])]
    elif len(words) > 1 and words[-1] in DETAIL_WORDS:
        words = words[:-1]
    sentence = " ".join(words).lower()
    return sentence[:1].upper() + sentence[1:]


def plural(word: str) -> str:
    if word.endswith(("s", "x", "ch", "sh")):
        return f"{word}es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return f"{word[:-1]}ies"
    return f"{word}s"
