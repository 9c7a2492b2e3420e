"""Changes that reach the audit log through Django's own signals (connected in
AuditConfig.ready): failed logins and actions in the admin."""

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.signals import user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver

from .services import audit_record

ADMIN_VERBS = {ADDITION: "add", CHANGE: "change", DELETION: "delete"}
# Objects whose primary key or text is a secret (a token's key): recorded without them.
SECRET_OBJECT_TYPES = {"authtoken.token", "authtoken.tokenproxy"}


@receiver(user_login_failed)
def audit_failed_login(sender, credentials, request=None, **kwargs):
    """Admin, browsable-API and token logins all authenticate through Django, which sends
    this signal with the password already removed."""
    username = str(credentials.get("username", ""))[:150]
    audit_record(
        action="auth.login_failed",
        object_type="accounts.user",
        object_repr=username,
        after={"username": username},
    )


@receiver(post_save, sender=LogEntry)
def audit_admin_action(sender, instance: LogEntry, created: bool, **kwargs):
    """Every admin action on one object, as the admin logged it (in the admin's own
    transaction). Deleting several objects at once is recorded by ``audit.admin``."""
    if created:
        audit_log_entry(instance)


def audit_log_entry(entry: LogEntry) -> None:
    content_type = entry.content_type
    object_type = f"{content_type.app_label}.{content_type.model}" if content_type else ""
    secret = object_type in SECRET_OBJECT_TYPES
    audit_record(
        action=f"admin.{ADMIN_VERBS.get(entry.action_flag, 'unknown')}",
        object_type=object_type,
        object_id="" if secret else entry.object_id or "",
        object_repr="" if secret else entry.object_repr,
        store=int(entry.object_id) if object_type == "stores.store" else None,
        after={"message": entry.get_change_message()},
        actor=entry.user,
    )
