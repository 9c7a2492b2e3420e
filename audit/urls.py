from django.urls import path

from . import apis

urlpatterns = [
    path("", apis.AuditEventListApi.as_view(), name="audit-event-list"),
]
