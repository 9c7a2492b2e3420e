from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Stock events"

    def ready(self):
        from . import publisher  # noqa: F401 - connects the live stream's publisher

        # The webhooks' receiver of stock_events_committed, and their tasks (Celery's
        # autodiscovery looks in events.tasks only).
        from .webhooks import receivers, tasks  # noqa: F401
