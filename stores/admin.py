from django.contrib import admin

from .models import Membership, Store
from .services import membership_grant, membership_revoke, store_create, store_update


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
