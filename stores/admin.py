from django.contrib import admin

from .access import highest_role_anywhere, staff_role, stores_visible_to
from .models import Membership, Store
from .services import membership_grant, membership_revoke, store_create, store_update


class StoreScopedAdmin(admin.ModelAdmin):
    """Rows of one store each, shown to whoever holds a role in their store
    (``stores.access``): members see their stores' rows, staff every store's when their
    stock permissions give them a role there. Django's per-model permissions play no part
    here, so the admin shows what the API shows.

    Read-only: nobody adds, changes or deletes these rows here, since changes go through
    the services (``StockLevelAdmin`` lets managers edit a reorder point).
    """

    store_lookup = "store"  # the field naming the row's store

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if self.sees_every_store(request):
            return queryset
        visible = stores_visible_to(request.user).values("pk")
        return queryset.filter(**{f"{self.store_lookup}__in": visible})

    def sees_every_store(self, request) -> bool:
        return staff_role(request.user) is not None

    def sees_some_store(self, request) -> bool:
        """The user holds a role in some store (remembered for the request)."""
        if not hasattr(request, "_sees_some_store"):
            request._sees_some_store = (
                self.admin_site.has_permission(request)
                and highest_role_anywhere(request.user) is not None
            )
        return request._sees_some_store

    def has_module_permission(self, request):
        return self.sees_some_store(request)

    def has_view_permission(self, request, obj=None):
        return self.sees_some_store(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class StoreFilter(admin.SimpleListFilter):
    """By store, offering only the stores the user may see."""

    title = "store"
    parameter_name = "store"

    def __init__(self, request, params, model, model_admin):
        self.store_lookup = model_admin.store_lookup
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        return list(stores_visible_to(request.user).values_list("code", "code"))

    def queryset(self, request, queryset):
        if self.value():
            store = Store.objects.filter(code=self.value()).values("pk")
            return queryset.filter(**{f"{self.store_lookup}__in": store})
        return queryset


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    """Stores and their members; every save goes through ``stores.services``."""

    list_display = ["code", "name", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["code", "name"]
    inlines = [MembershipInline]

    def get_readonly_fields(self, request, obj=None):
        return ["code"] if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            changes = {
                field: form.cleaned_data[field]
                for field in form.changed_data
                if field in {"name", "is_active"}
            }
            if changes:
                store_update(store=Store.objects.get(pk=obj.pk), actor=request.user, **changes)
            return
        created = store_create(code=obj.code, name=obj.name, actor=request.user)
        if not obj.is_active:
            store_update(store=created, actor=request.user, is_active=False)
        obj.pk, obj.created_at = created.pk, created.created_at

    def save_formset(self, request, form, formset, change):
        """Membership rows become grants and revocations."""
        if formset.model is not Membership:
            return super().save_formset(request, form, formset, change)
        store = form.instance
        memberships = formset.save(commit=False)
        for membership in formset.deleted_objects:
            membership_revoke(store=store, user=membership.user, actor=request.user)
        for membership in memberships:
            if membership.pk:
                previous = Membership.objects.select_related("user").get(pk=membership.pk)
                if previous.user_id != membership.user_id:
                    membership_revoke(store=store, user=previous.user, actor=request.user)
            membership_grant(
                store=store, user=membership.user, role=membership.role, actor=request.user
            )
