from django.contrib import admin
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connections, router, transaction
from django.utils.formats import date_format
from django.utils.timezone import localtime

from stores.access import AUDIT_EVERY_EVENT_PERMISSION, has_staff_permission, highest_role_anywhere
from stores.admin import StoreFilter, StoreScopedAdmin
from stores.models import Role

from .models import AuditEvent
from .receivers import audit_log_entry
from .selectors import audit_events_visible_to


class IndexedValuesFilter(admin.AllValuesFieldListFilter):
    """Django's filter by each value a column holds, without reading every row to find
    them: for whoever sees every event, the values are found by hopping through the
    column's index from one value to the next (a recursive query, one index probe per
    value: a few dozen actions among millions of events); for a member, among the
    events of their stores. The column needs an index leading with it
    (``AuditEvent.Meta.indexes``)."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        if model_admin.sees_every_event(request):
            values = _distinct_values(model, field.column)
        else:
            visible = model_admin.get_queryset(request).order_by()
            values = set(visible.values_list(field.name, flat=True).distinct())
        self.lookup_choices = sorted(value for value in values if value is not None)


def _distinct_values(model, column: str) -> list:
    """The values of ``column``, through its index: the smallest, then the smallest
    above it, and so on (PostgreSQL and SQLite alike)."""
    connection = connections[router.db_for_read(model)]
    table, column = (connection.ops.quote_name(name) for name in (model._meta.db_table, column))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE found (value) AS (
                SELECT (SELECT {column} FROM {table} ORDER BY {column} LIMIT 1)
                UNION ALL
                SELECT (SELECT {column} FROM {table} WHERE {column} > found.value
                        ORDER BY {column} LIMIT 1)
                FROM found WHERE found.value IS NOT NULL
            )
            SELECT value FROM found WHERE value IS NOT NULL
            """
        )
        return [value for (value,) in cursor.fetchall()]


@admin.register(AuditEvent)
class AuditEventAdmin(StoreScopedAdmin):
    """The audit log, read-only: nobody adds, changes or deletes events here. Each user
    sees what ``audit_events_visible_to`` gives them, as in the API: the address an
    event came from only where they manage the store (no address column nor field for
    viewers and clerks); events of no store only with ``audit.view_auditevent``."""

    store_lookup = "store_id"
    list_display = ["sequence", "when", "action", "actor", "ip_address", "object_label"]
    # The page of one event, its fields named in words rather than after their columns.
    fields = [
        "sequence", "when", "action", "store", "actor", "ip_address", "object_type",
        "object_id_label", "object_label", "before", "after", "request_id_label",
        "recorded_at", "hash", "previous_hash",
    ]  # fmt: skip
    readonly_fields = fields
    list_filter = [
        StoreFilter,
        ("action", IndexedValuesFilter),
        ("object_type", IndexedValuesFilter),
    ]
    search_fields = ["actor_username", "object_repr", "object_id", "request_id"]
    ordering = ["-sequence"]
    sortable_at_scale = ("sequence",)

    def get_queryset(self, request):
        return audit_events_visible_to(request.user)

    def sees_every_event(self, request) -> bool:
        return has_staff_permission(request.user, AUDIT_EVERY_EVENT_PERMISSION)

    def lists_every_store(self, request) -> bool:
        return self.sees_every_event(request) or super().lists_every_store(request)

    def sees_some_address(self, request) -> bool:
        """Some events may show their address: the user manages a store or sees all."""
        return self.sees_every_event(request) or (
            highest_role_anywhere(request.user) is Role.MANAGER
        )

    def has_module_permission(self, request):
        return self.sees_every_event(request) or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self.sees_every_event(request) or super().has_view_permission(request, obj)

    def get_list_display(self, request):
        if self.sees_some_address(request):
            return self.list_display
        return [field for field in self.list_display if field != "ip_address"]

    def get_fields(self, request, obj=None):
        shows_address = obj is not None and obj.ip_visible
        return [field for field in self.fields if field != "ip_address" or shows_address]

    @admin.display(description="when", ordering="occurred_at")
    def when(self, event):
        """To the second, in a column that leaves the object room in the list."""
        return date_format(localtime(event.occurred_at), "Y-m-d H:i:s")

    @admin.display(description="actor", ordering="actor_username")
    def actor(self, event):
        return event.actor_username

    @admin.display(description="store")
    def store(self, event):
        """The store's code (``audit_events_visible_to`` reads it with the event)."""
        return event.store_code

    @admin.display(description="object")
    def object_label(self, event):
        return event.object_repr

    @admin.display(description="object ID")
    def object_id_label(self, event):
        return event.object_id

    @admin.display(description="request ID")
    def request_id_label(self, event):
        return event.request_id

    @admin.display(description="IP address", ordering="ip")
    def ip_address(self, event):
        """The address, where ``audit_events_visible_to`` marked it visible."""
        return event.ip if event.ip_visible else None


@admin.action(permissions=["delete"], description=django_delete_selected.short_description)
def delete_selected(modeladmin, request, queryset):
    """Django's "delete selected" action, with each deleted object in the audit log, in
    the transaction of the deletion: the objects are gone exactly when their events are
    recorded, as for every other change.

    Django logs a single deletion with ``LogEntry.save()``, which ``audit_admin_action``
    hears, but several at once with ``bulk_create``, which sends no signal; those are
    recorded here.
    """
    if not request.POST.get("post"):  # the confirmation page: nothing changes
        return django_delete_selected(modeladmin, request, queryset)
    with transaction.atomic(using=router.db_for_write(queryset.model)):
        objects = list(queryset)
        response = django_delete_selected(modeladmin, request, queryset)
        if response is None and len(objects) > 1:
            content_type = ContentType.objects.get_for_model(
                queryset.model, for_concrete_model=False
            )
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
