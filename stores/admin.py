from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.forms import Media
from django.http import JsonResponse
from django.urls import path, reverse
from django.views.generic.list import BaseListView

from inventory_site.admin_lists import EstimatedCountChangeList, EstimatedCountPaginator

from .access import (
    highest_role_anywhere,
    memberships_of,
    staff_role,
    store_ids_visible_to,
    stores_visible_to,
)
from .models import Membership, Store
from .services import membership_grant, membership_revoke, store_create, store_update


class StoreScopedAdmin(admin.ModelAdmin):
    """Rows of one store each, shown to whoever holds a role in their store
    (``stores.access``): members see their stores' rows, staff every store's when their
    stock permissions give them a role there. Django's per-model permissions play no part
    here, so the admin shows what the API shows.

    Read-only: nobody adds, changes or deletes these rows here, since changes go through
    the services (``StockLevelAdmin`` lets managers edit a reorder point).

    The tables grow to millions of rows (10,000 stores x 500 products): the list is
    counted only where that is cheap (``EstimatedCountPaginator``), read in the order of
    an index (each admin's ``ordering``), a member's rows through their stores' ids
    (``store_ids_visible_to``), and staff's list of every store sorts by the columns of
    ``sortable_at_scale`` only, until it is narrowed to one store.
    """

    store_lookup = "store"  # the field naming the row's store
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    sortable_at_scale: tuple[str, ...] = ()

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        store_ids = store_ids_visible_to(request.user)
        if store_ids is None:
            return queryset
        return queryset.filter(**{f"{self.store_lookup}__in": store_ids})

    def get_changelist(self, request, **kwargs):
        return EstimatedCountChangeList

    def get_sortable_by(self, request):
        if self.lists_every_store(request) and not request.GET.get(StoreFilter.parameter_name):
            return self.sortable_at_scale
        return super().get_sortable_by(request)

    def changelist_view(self, request, extra_context=None):
        """The list, with the scripts of the store filter's search box where it has one."""
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None) or {}
        specs = getattr(context.get("cl"), "filter_specs", [])
        if "media" in context and any(getattr(spec, "searched", False) for spec in specs):
            context["media"] += StoreSearchSelect.filter_media()
        return response

    def sees_every_store(self, request) -> bool:
        return staff_role(request.user) is not None

    def lists_every_store(self, request) -> bool:
        """The list holds the rows of every store, not a member's few."""
        return self.sees_every_store(request)

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


class StoreSearchSelect(AutocompleteSelect):
    """Django's autocomplete widget (select2, with the admin's own script and styles)
    asking ``StoreSearchView`` for the stores the user sees; its values are store codes.
    Choosing one opens the list filtered by it (``stores/store_filter.js``)."""

    def __init__(self, admin_site):
        super().__init__(Membership._meta.get_field("store"), admin_site)

    def get_url(self):
        return reverse(f"{self.admin_site.name}:stores_store_search")

    def optgroups(self, name, value, attr=None):
        """The chosen store only: the others are asked for as the user types."""
        chosen = [code for code in value if code]
        options = [self.create_option(name, "", "", not chosen, 0)]
        options += [
            self.create_option(name, code, code, True, index)
            for index, code in enumerate(chosen, start=1)
        ]
        return [(None, options, 0)]

    @classmethod
    def filter_media(cls) -> Media:
        return cls(admin.site).media + Media(js=["stores/store_filter.js"])


class StoreFilter(admin.SimpleListFilter):
    """By store (``?store=<code>``), offering only the stores the user may see: a link
    for each while they are few (a member's), else a search box asking for them as the
    user types (staff see every store: thousands of links would be a page of their own).
    """

    title = "store"
    parameter_name = "store"
    LINKS_AT_MOST = 20
    search_template = "admin/stores/store_search_filter.html"

    def __init__(self, request, params, model, model_admin):
        self.store_lookup = model_admin.store_lookup
        self.admin_site = model_admin.admin_site
        self.searched = False
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        if staff_role(request.user) is None:
            codes = sorted({code for _, code, _ in memberships_of(request.user)})
            if len(codes) <= self.LINKS_AT_MOST:
                return [(code, code) for code in codes]
        self.searched = True
        self.template = self.search_template
        chosen = self.value()
        return [(chosen, chosen)] if chosen else []

    def has_output(self):
        return self.searched or super().has_output()

    def choices(self, changelist):
        self.changelist = changelist  # for search_box
        yield from super().choices(changelist)

    @property
    def search_box(self):
        """The search box, holding the chosen store; the list's other parameters go
        along when a store is chosen."""
        changelist = self.changelist
        return StoreSearchSelect(self.admin_site).render(
            self.parameter_name,
            self.value() or "",
            attrs={
                "id": "store-search",
                "data-store-filter": "",
                "data-query": changelist.get_query_string(remove=[self.parameter_name]),
                "style": "width: 100%",
            },
        )

    def queryset(self, request, queryset):
        """By the store's id, read first: ``store_id = 7`` is read through the index
        leading with the store, in its order; a subquery on the code may not be."""
        if not self.value():
            return queryset
        store_id = Store.objects.filter(code=self.value()).values_list("pk", flat=True).first()
        if store_id is None:
            return queryset.none()
        return queryset.filter(**{self.store_lookup: store_id})


class StoreSearchView(BaseListView):
    """``?term=``: the stores the user sees whose code or name holds the term, by code,
    20 a page, as Django's autocomplete widget reads them: ``{"results": [{"id": code,
    "text": "code (name)"}], "pagination": {"more"}}``. For whoever holds a role in some
    store; anyone else 403."""

    paginate_by = 20  # as Django's own autocomplete view

    def get(self, request, *args, **kwargs):
        if highest_role_anywhere(request.user) is None:
            raise PermissionDenied
        self.term = request.GET.get("term", "").strip()
        self.object_list = self.get_queryset()
        context = self.get_context_data()
        return JsonResponse(
            {
                "results": [
                    {"id": store.code, "text": f"{store.code} ({store.name})"}
                    for store in context["object_list"]
                ],
                "pagination": {"more": context["page_obj"].has_next()},
            }
        )

    def get_queryset(self):
        stores = stores_visible_to(self.request.user).order_by("code")
        if self.term:
            stores = stores.filter(Q(code__icontains=self.term) | Q(name__icontains=self.term))
        return stores


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

    def get_urls(self):
        search = StoreSearchView.as_view()
        return [
            path("search/", self.admin_site.admin_view(search), name="stores_store_search"),
            *super().get_urls(),
        ]

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
