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
# Objects the admin changes only through a service that records the change itself, with
# the values before and after: a stock level's page sets its reorder point through
# ``stock_set_reorder_point`` (``stock.reorder_point``, as the API's PATCH does). The
# admin's log entry (kept for the object's admin history) would record it a second time.
AUDITED_BY_THEIR_SERVICE = {"stock.stocklevel"}


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
    if created and _object_type(instance) not in AUDITED_BY_THEIR_SERVICE:
        audit_log_entry(instance)


def _object_type(entry: LogEntry) -> str:
    content_type = entry.content_type
    return f"{content_type.app_label}.{content_type.model}" if content_type else ""


def audit_log_entry(entry: LogEntry) -> None:
    object_type = _object_type(entry)
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
