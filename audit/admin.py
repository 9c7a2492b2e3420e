from django.contrib import admin
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType

from stores.admin import StoreFilter, StoreScopedAdmin

from .models import AuditEvent
from .receivers import audit_log_entry


@admin.register(AuditEvent)
class AuditEventAdmin(StoreScopedAdmin):
    """The audit log, read-only: nobody adds, changes or deletes events here. Members
    see their stores' events; events of no store are for staff."""

    store_lookup = "store_id"
    list_display = ["sequence", "occurred_at", "action", "actor_username", "ip", "object_repr"]
    list_filter = [StoreFilter, "action", "object_type"]
    search_fields = ["actor_username", "object_repr", "object_id", "request_id"]
    ordering = ["-sequence"]
    show_full_result_count = False  # a count over years of events is not worth its cost


@admin.action(permissions=["delete"], description=django_delete_selected.short_description)
def delete_selected(modeladmin, request, queryset):
    """Django's "delete selected" action, with each deleted object in the audit log.

    Django logs a single deletion with ``LogEntry.save()``, which ``audit_admin_action``
    hears, but several at once with ``bulk_create``, which sends no signal; those are
    recorded here.
    """
    confirmed = bool(request.POST.get("post"))
    objects = list(queryset) if confirmed else []
    response = django_delete_selected(modeladmin, request, queryset)
    if response is None and len(objects) > 1:
        content_type = ContentType.objects.get_for_model(queryset.model, for_concrete_model=False)
        for obj in objects:
            audit_log_entry(
                LogEntry(
                    user=request.user,
                    content_type=content_type,
                    object_id=str(obj.pk),
                    object_repr=str(obj)[:200],
                    action_flag=DELETION,
                    change_message="",
                )
            )
    return response


admin.site.add_action(delete_selected, "delete_selected")
