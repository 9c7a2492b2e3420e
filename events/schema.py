"""The live stream in the OpenAPI schema.

``GET /api/v1/stores/{code}/events/stream/`` is a plain async Django view
(``events.stream.views.event_stream``, served by the events process), and drf-spectacular
documents DRF views only. Its preprocessing hook ``with_event_stream`` adds the stream's
route, described by ``EventStreamDescription``: a DRF view that stands in for it in the
schema and is never routed, so the stream's answers are documented with the same error
shapes and authentication as the rest of the API.
"""

from collections.abc import Iterator

from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import EndpointEnumerator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.views import APIView

from inventory_site.api.schema import ERRORS, ErrorSerializer

from .stream.views import RETRY_MILLISECONDS, event_stream

SEQ = {"type": "integer", "minimum": 0}
FRAMES = (
    f"retry: {RETRY_MILLISECONDS}\n\n"
    'id: 42\nevent: stock.low\ndata: {"seq": 42, "type": "stock.low", "sku": "TEE", '
    '"on_hand": 4, "reserved": 0, "available": 4, "reorder_point": 5, "version": 17, '
    '"at": "2026-11-30T13:33:27.123456Z"}\n\n'
    ": heartbeat\n\n"
)


class EventStreamDescription(APIView):
    """Stands in for ``event_stream`` in the schema only; never routed."""

    @extend_schema(
        operation_id="stores_events_stream",
        summary="The store's stock events, live, as Server-Sent Events",
        description=(
            "The same events as `GET /api/v1/stores/{code}/events/`, one SSE message "
            "each (`id:` its `seq`, `event:` its type, `data:` the event as JSON), the "
            "log after the cursor first, then each event as it commits, in `seq` order "
            "without a gap; a comment line every so often while nothing happens. "
            "Resume with `Last-Event-ID` (an EventSource sends it when it reconnects) "
            "or `?after=`. Served by the events process (`bin/run events`): the web "
            "process answers 503 naming it. Any member of the store (viewer up)."
        ),
        parameters=[
            OpenApiParameter(
                "code", OpenApiTypes.STR, OpenApiParameter.PATH, description="The store."
            ),
            OpenApiParameter(
                "after",
                SEQ,
                OpenApiParameter.QUERY,
                description="The last seq read: the stream starts after it. Default 0, "
                "the start of the log.",
            ),
            OpenApiParameter(
                "Last-Event-ID",
                SEQ,
                OpenApiParameter.HEADER,
                description="The id of the last message received; wins over `after`.",
            ),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.STR,
                "An open stream of the store's events, until the client leaves.",
                examples=[
                    OpenApiExample(
                        "Events", value=FRAMES, media_type="text/event-stream", status_codes=[200]
                    )
                ],
            ),
            400: OpenApiResponse(
                ErrorSerializer, "Last-Event-ID or `after` is not an event's seq."
            ),
            401: ERRORS[401],
            403: ERRORS[403],
            404: ERRORS[404],
            429: OpenApiResponse(
                ErrorSerializer,
                "Too many streams opened by this user (EVENTS_STREAM_RATE_PER_USER); see "
                "Retry-After.",
            ),
            503: OpenApiResponse(
                ErrorSerializer,
                "Not the events process (route the path to `bin/run events`), or Redis "
                "cannot be reached (then with Retry-After).",
            ),
        },
    )
    def get(self, request, code):
        raise NotImplementedError("The schema's stand-in: event_stream serves the stream.")


def with_event_stream(endpoints: list[tuple]) -> list[tuple]:
    """drf-spectacular's preprocessing hook (``PREPROCESSING_HOOKS``): the endpoints it
    found, and the stream's route as the URL conf has it, described by
    ``EventStreamDescription``."""
    described = EventStreamDescription.as_view()
    return [
        *endpoints,
        *((path, path_regex, "GET", described) for path, path_regex in routes_to(event_stream)),
    ]


def routes_to(view, patterns=None, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(path, path regex) of each URL pattern routing to ``view``, written as
    drf-spectacular's enumerator writes those it finds."""
    enumerator = EndpointEnumerator(patterns=[])
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        path_regex = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from routes_to(view, pattern.url_patterns, path_regex)
        elif isinstance(pattern, URLPattern) and pattern.callback is view:
            yield enumerator.get_path_from_regex(path_regex), path_regex
