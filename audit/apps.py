from django.apps import AppConfig


class AuditConfig(AppConfig):
    """Audit trail of who changed what. Its models arrive with the audit log work."""

    name = "audit"
    verbose_name = "Audit"
