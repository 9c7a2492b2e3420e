"""Bulk stock jobs: submitted here, applied by a worker, followed by their status."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.reverse import reverse

from inventory_site.api.parsers import LimitedJSONParser
from inventory_site.api.schema import errors
from inventory_site.api.views import ApiView, validated
from inventory_site.replicas.routing import answer_with_token
from stores.access import store_for
from stores.models import Role

from ..idempotency import idempotently
from ..models import BulkJobStatus
from ..selectors import bulk_job_for
from ..serializers import (
    BULK_JOB_REQUEST,
    BULK_REFUSAL,
    BulkJobAcceptedSerializer,
    BulkJobCreateSerializer,
    BulkJobSerializer,
)
from ..services import bulk_job_submit
from .schema import IDEMPOTENCY_KEY


class BulkBodyParser(LimitedJSONParser):
    """A bulk job's body may be larger than any other: 10,000 items (README,
    "Configuration")."""

    limit_setting = "BULK_MAX_BODY_BYTES"


class BulkJobCreateApi(ApiView):
    """POST a bulk job: its items are checked now (400 listing every bad one, nothing
    queued), then it is stored and queued, and the answer points at its progress."""

    serializer_class = BulkJobCreateSerializer
    parser_classes = [BulkBodyParser]

    @extend_schema(
        request=BULK_JOB_REQUEST,
        parameters=[
            IDEMPOTENCY_KEY,
            OpenApiParameter(
                "Location",
                location=OpenApiParameter.HEADER,
                response=[202],
                description="The job's status_url.",
            ),
        ],
        responses={
            202: OpenApiResponse(BulkJobAcceptedSerializer, "Stored and queued for a worker."),
            **errors(400, 403, 404, 409, 422),
            400: BULK_REFUSAL,
        },
    )
    def post(self, request, code):
        store = store_for(request.user, code, role=Role.MANAGER)
        response = idempotently(self, request, lambda: self.submit(request, store))
        if response.status_code == status.HTTP_202_ACCEPTED:
            response["Location"] = response.data["status_url"]  # a replay stores no headers
        return response

    def submit(self, request, store):
        data = validated(BulkJobCreateSerializer, request.data)
        job = bulk_job_submit(store=store, actor=request.user, **data)
        status_url = reverse("bulk-job-detail", kwargs={"job_id": job.pk}, request=request)
        body = {"job": str(job.pk), "status_url": status_url}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class BulkJobDetailApi(ApiView):
    """A bulk job's status and progress, and its failed items (index, sku, detail,
    code); for its creator, its store's managers and staff (others: 404).

    A finished job's answer carries ``X-Consistency-Token`` where there are replicas:
    its changes were committed by a worker, not by any request of the client's, and a
    client that polls until ``done`` and then reads its lists must see them."""

    serializer_class = BulkJobSerializer

    @extend_schema(responses={200: BulkJobSerializer, **errors(404)})
    def get(self, request, job_id):
        job = bulk_job_for(request.user, job_id)
        if job is None:
            raise NotFound("No such job.")
        if job.status in (BulkJobStatus.DONE, BulkJobStatus.FAILED):
            answer_with_token()
        return Response(BulkJobSerializer(job).data)
