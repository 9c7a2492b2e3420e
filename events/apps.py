from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Stock events"

    def ready(self):
        from . import publisher  # noqa: F401 - connects the live stream's publisher
