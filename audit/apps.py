from django.apps import AppConfig


class AuditConfig(AppConfig):
    """Audit trail of who changed what, when and from where."""

    name = "audit"
    verbose_name = "Audit"

    def ready(self):
        from inventory_site.metrics import register_live_collector

        from . import receivers  # noqa: F401 - connects failed-login and admin receivers
        from .metrics import AuditRelayCollector

        register_live_collector(AuditRelayCollector())
