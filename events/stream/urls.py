"""The live stream's route under /api/v1/stores/<code>/."""

from django.urls import path

from .views import event_stream

urlpatterns = [
    path("events/stream/", event_stream, name="event-stream"),
]
