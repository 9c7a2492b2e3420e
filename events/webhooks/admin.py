"""The webhooks in the admin, for the managers of their stores (as in the API): the
subscriptions, added and changed through the services (a new secret is shown once, in
the page's message), and their deliveries, read-only, with a "redeliver" action."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from events.models import EventType
from stores.access import highest_role_anywhere, store_ids_visible_to, stores_visible_to
from stores.admin import StoreFilter, StoreScopedAdmin
from stores.models import Role

from .addresses import MAX_URL_LENGTH, UrlRefused, checked_receiver
from .models import WebhookDelivery, WebhookSubscription
from .services import (
    delivery_redeliver,
    subscription_create,
    subscription_delete,
    subscription_rotate_secret,
    subscription_update,
)


class ManagedStoresAdmin(StoreScopedAdmin):
    """Rows of the stores the user manages (staff: every store, with the stock change
    permission that makes them managers everywhere)."""

    def get_queryset(self, request):
        queryset = admin.ModelAdmin.get_queryset(self, request)
        store_ids = store_ids_visible_to(request.user, role=Role.MANAGER)
        if store_ids is None:
            return queryset
        return queryset.filter(**{f"{self.store_lookup}__in": store_ids})

    def sees_some_store(self, request) -> bool:
        if not hasattr(request, "_manages_some_store"):
            # From the access layer's cached roles: no query on every admin page.
            role = highest_role_anywhere(request.user)
            request._manages_some_store = (
                self.admin_site.has_permission(request)
                and role is not None
                and role.includes(Role.MANAGER)
            )
        return request._manages_some_store


class WebhookSubscriptionForm(forms.ModelForm):
    url = forms.URLField(max_length=MAX_URL_LENGTH, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=EventType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None chosen: every type.",
    )

    class Meta:
        model = WebhookSubscription
        fields = ["store", "url", "event_types", "is_active"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if "store" in self.fields:
            self.fields["store"].queryset = stores_visible_to(user, role=Role.MANAGER)

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            checked_receiver(url)
        except UrlRefused as refusal:
            raise ValidationError(str(refusal)) from None
        return url


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ManagedStoresAdmin):
    form = WebhookSubscriptionForm
    list_display = [
        "url",
        "store",
        "is_active",
        "event_types",
        "consecutive_failures",
        "disabled_at",
    ]
    list_select_related = ["store"]
    list_filter = [StoreFilter, "is_active"]
    readonly_fields = [
        "consecutive_failures", "disabled_at", "disabled_reason", "previous_secret_expires_at",
        "sent_seq", "held_until", "created_by", "created_at",
    ]  # fmt: skip
    ordering = ["-id"]
    actions = ["rotate_secret_selected"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        user = request.user

        class FormForUser(form):
            def __init__(self, *args, **inner):
                super().__init__(*args, user=user, **inner)

        return FormForUser

    def get_readonly_fields(self, request, obj=None):
        # A subscription stays with its store: deliveries name the store's events.
        return [*self.readonly_fields, "store"] if obj else self.readonly_fields

    def has_add_permission(self, request):
        return self.sees_some_store(request)

    def has_change_permission(self, request, obj=None):
        return self.sees_some_store(request)

    def has_delete_permission(self, request, obj=None):
        return self.sees_some_store(request)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            fields = {name: data[name] for name in ("url", "event_types", "is_active")}
            subscription_update(subscription=obj, actor=request.user, **fields)
            return
        created = subscription_create(
            store=data["store"],
            url=data["url"],
            event_types=data["event_types"],
            is_active=data["is_active"],
            actor=request.user,
        )
        obj.pk = created.pk
        messages.warning(request, f"Signing secret (shown this once): {created.secret}")

    def log_addition(self, request, obj, message):
        """The service recorded the creation in the audit log."""

    def log_change(self, request, obj, message):
        """The service recorded the change in the audit log."""

    def log_deletion(self, request, obj, object_repr):
        """The service recorded the deletion in the audit log."""

    def delete_model(self, request, obj):
        subscription_delete(subscription=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for subscription in queryset:
            subscription_delete(subscription=subscription, actor=request.user)

    @admin.action(description="Rotate the signing secret of selected webhooks")
    def rotate_secret_selected(self, request, queryset):
        for subscription in queryset:
            rotated = subscription_rotate_secret(subscription=subscription, actor=request.user)
            messages.warning(
                request, f"New signing secret of {rotated.url} (shown this once): {rotated.secret}"
            )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ManagedStoresAdmin):
    list_display = [
        "webhook_id", "subscription", "event_type", "status", "attempts", "last_response_code",
        "next_attempt_at", "updated_at",
    ]  # fmt: skip
    list_select_related = ["subscription"]
    list_filter = [StoreFilter, "status"]
    ordering = ["-id"]
    sortable_at_scale = ()
    actions = ["redeliver_selected"]
    readonly_fields = [
        "subscription", "seq", "event_type", "payload", "status", "attempts", "next_attempt_at",
        "last_response_code", "last_duration_ms", "last_error", "created_at", "updated_at",
    ]  # fmt: skip

    @admin.action(description="Redeliver selected deliveries now")
    def redeliver_selected(self, request, queryset):
        deliveries = list(queryset[:500])
        for delivery in deliveries:
            delivery_redeliver(delivery=delivery, actor=request.user)
        messages.success(request, f"{len(deliveries)} deliveries queued to be sent again.")
