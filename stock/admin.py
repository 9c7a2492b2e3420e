"""Stock in the admin: members see their stores' levels, ledger and holds; managers
receive, adjust, count and transfer through forms that call ``stock.services``.

on_hand and reserved are never form fields: every change is a service call, so it is
guarded, written to the ledger and audited like an API call.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import PAGE_VAR
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.timezone import localtime

from audit.selectors import audit_events_visible_to
from catalog.models import Product
from catalog.selectors import product_by_sku
from stores.access import (
    highest_role_anywhere,
    role_in_store,
    store_for_page,
    stores_visible_to,
)
from stores.admin import StoreFilter, StoreScopedAdmin
from stores.models import Role

from .exceptions import StockError
from .flash_gate.services import gate_switch, gates_have_tokens
from .forms import (
    AdjustForm,
    BulkTransferForm,
    ReceiveForm,
    ReorderPointForm,
    SetCountForm,
    StockExportForm,
    StockImportForm,
    TransferForm,
)
from .models import (
    LOW_STOCK,
    FlashSaleGate,
    Movement,
    Reservation,
    ReservationLine,
    StockLevel,
)
from .operator_io import (
    ITERATOR_CHUNK_SIZE,
    SET,
    StockFileInvalid,
    StockImportRefused,
    apply_stock_rows,
    parse_stock_csv,
    stock_levels_for_report,
    write_stock_csv,
)
from .selectors import stock_levels_of_product_visible_to, total_available
from .services import (
    MAX_QUANTITY,
    StockLine,
    stock_adjust,
    stock_receive,
    stock_set_count,
    stock_set_reorder_point,
    stock_set_reorder_points,
    stock_transfer,
)
from .templatetags.stock_pages import low_label, movement_change

LATEST_MOVEMENTS = 10  # shown on a level's page
PRODUCT_PAGE_SIZE = 100  # stores per page of a product's stock
MAX_LEVELS_PER_ACTION = 200  # one form of the transfer action holds a quantity for each
HISTORY_PAGE_SIZE = 100  # movements per page of a level's history


def movements_of_level(level) -> QuerySet[Movement]:
    """A level's movements, newest first, read through the one-movement-per-version
    index (store, product, version_after), however busy the rest of the store is."""
    return (
        Movement.objects.filter(store_id=level.store_id, product_id=level.product_id)
        .select_related("actor")
        .order_by("-version_after")
    )


def level_movements_url(level) -> str:
    """The movement list showing one level's movements."""
    query = urlencode({"store": level.store.code, "sku": level.product.sku})
    return f"{reverse('admin:stock_movement_changelist')}?{query}"


def shortened(text: str, limit: int):
    """``text`` as it is when it fits in ``limit`` characters; else cut, with an
    ellipsis, and the whole of it as the tooltip."""
    if len(text) <= limit:
        return text
    return format_html('<span title="{}">{}…</span>', text, text[: limit - 1])


NOTE_SHOWN = 40  # characters of a note in the list; the whole note is its tooltip
REFERENCE_SHOWN = 16  # a transfer's reference is 41 characters long
PRODUCT_NAME_SHOWN = 28


NO_MANAGED_STORE = (
    "Exporting or importing a store's stock needs the manager role there; you manage no store."
)


def stock_csv_response(store) -> HttpResponse:
    """The store's levels as ``export_stock`` writes them, as a file to download."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="stock-{store.code}-{stamp}.csv"'
    levels = stock_levels_for_report(store).iterator(chunk_size=ITERATOR_CHUNK_SIZE)
    write_stock_csv(response, levels)
    return response


def import_summary(name, mode, applied, unchanged, store) -> str:
    rows = f"{applied} row{'' if applied == 1 else 's'} applied"
    if mode == SET:
        return f"Imported {name} into {store.code}: {rows}, {unchanged} unchanged (counts)."
    return f"Imported {name} into {store.code}: {rows} (adjustments)."


def store_text(store) -> str:
    """A store as text, where a link would lead members to the staff's store pages."""
    return f"{store.code} ({store.name})"


def product_text(product) -> str:
    """A product as text, where a link would lead members to the staff's catalog."""
    return f"{product.sku} ({product.name})"


class LowStockFilter(admin.SimpleListFilter):
    title = "low stock"
    parameter_name = "low_stock"

    def lookups(self, request, model_admin):
        return [("yes", "At or below reorder point"), ("no", "Above reorder point")]

    def queryset(self, request, queryset):
        low = LOW_STOCK
        if self.value() == "yes":
            return queryset.filter(low)
        if self.value() == "no":
            return queryset.exclude(low)
        return queryset


class FlashSaleGateFilter(admin.SimpleListFilter):
    title = "flash-sale gate"
    parameter_name = "flash_gate"

    def lookups(self, request, model_admin):
        return [("on", "On"), ("off", "Off")]

    def queryset(self, request, queryset):
        if self.value() == "on":
            return queryset.filter(gate_on=True)
        if self.value() == "off":
            return queryset.filter(gate_on=False)
        return queryset


# --- Operations ---------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One stock operation offered on a level's page: its form and the service call,
    which returns the message shown after it succeeded."""

    title: str
    form_class: type
    apply: Callable
    what: str  # what it does, for the sentence refusing it to a non-manager


def _receive(level, data, actor) -> str:
    after = stock_receive(
        store=level.store,
        product=level.product,
        quantity=data["quantity"],
        reference=data["reference"],
        note=data["note"],
        actor=actor,
    )
    return f"Received {data['quantity']} units; on hand now {after.on_hand}."


def _adjust(level, data, actor) -> str:
    after = stock_adjust(
        store=level.store,
        product=level.product,
        delta=data["delta"],
        reason=data["reason"],
        note=data["note"],
        actor=actor,
    )
    return f"Adjusted by {data['delta']:+d} ({data['reason']}); on hand now {after.on_hand}."


def _set_count(level, data, actor) -> str:
    after = stock_set_count(
        store=level.store,
        product=level.product,
        on_hand=data["on_hand"],
        expected_version=data["expected_version"],
        reason=data["reason"],
        note=data["note"],
        actor=actor,
    )
    return f"Count recorded; on hand now {after.on_hand}."


def _transfer(level, data, actor) -> str:
    stock_transfer(
        from_store=level.store,
        to_store=data["to_store"],
        lines=[StockLine(level.product, data["quantity"])],
        note=data["note"],
        actor=actor,
    )
    return f"Moved {data['quantity']} units to {data['to_store'].code}."


OPERATIONS = {
    "receive": Operation("Receive", ReceiveForm, _receive, "receive stock"),
    "adjust": Operation("Adjust", AdjustForm, _adjust, "adjust stock"),
    "set-count": Operation("Set count", SetCountForm, _set_count, "record a count"),
    "transfer": Operation("Transfer", TransferForm, _transfer, "transfer stock"),
}


def require_manager(user, store, *, to: str) -> None:
    """PermissionDenied, with a sentence saying why, unless ``user`` manages ``store``
    (by membership, or as staff holding ``stock.change_stocklevel``: ``stores.access``).
    The site's 403 page shows the sentence in the admin's style."""
    _, role = role_in_store(user, store)
    if role is not None and role.includes(Role.MANAGER):
        return
    held = f"you are a {role.label.lower()} there" if role else "you hold no role there"
    raise PermissionDenied(f"Only a manager of store {store.code} may {to}; {held}.")


@admin.register(StockLevel)
class StockLevelAdmin(StoreScopedAdmin):
    list_display = [
        "store", "sku", "product_name", "on_hand", "reserved", "available", "reorder_point",
        "low", "gate", "version", "updated",
    ]  # fmt: skip
    list_select_related = ["store", "product"]
    list_filter = [StoreFilter, LowStockFilter, FlashSaleGateFilter]
    search_fields = ["product__sku", "product__name"]
    # The order of the (store, product) unique index: a page is read from it, where an
    # order by store code and SKU would sort every level first (5,000,000 at 10,000
    # stores). Generated and demo catalogs are numbered in SKU order.
    ordering = ["store_id", "product_id"]
    # The store and product as text: links would lead members to admin pages of the
    # catalog and stores, which are staff's.
    fields = [
        "store_code", "product_line", "on_hand", "reserved", "available", "reorder_point",
        "version", "updated_at",
    ]  # fmt: skip
    readonly_fields = [field for field in fields if field != "reorder_point"]
    change_form_template = "admin/stock/stocklevel/change_form.html"
    change_list_template = "admin/stock/stocklevel/change_list.html"
    actions = [
        "transfer_selected", "set_reorder_point_selected", "switch_gate_on_selected",
        "switch_gate_off_selected",
    ]  # fmt: skip

    @admin.display(ordering="product__sku", description="SKU")
    def sku(self, level):
        return level.product.sku

    @admin.display(ordering="product__name", description="product")
    def product_name(self, level):
        """The name, leading to the product's stock in every store the user sees."""
        return format_html(
            '<a href="{}" title="{} in every store">{}</a>',
            reverse("admin:stock_stocklevel_product", args=[level.product_id]),
            level.product.sku,
            shortened(level.product.name, PRODUCT_NAME_SHOWN),
        )

    @admin.display(ordering="updated_at", description="updated")
    def updated(self, level):
        return date_format(localtime(level.updated_at), "Y-m-d H:i")

    @admin.display(description="store")
    def store_code(self, level):
        return store_text(level.store)

    @admin.display(description="product")
    def product_line(self, level):
        return product_text(level.product)

    @admin.display(description="low", empty_value="")
    def low(self, level):
        return low_label(level)

    @admin.display(description="flash-sale gate", empty_value="")
    def gate(self, level):
        """A gated level reads "on", another nothing, as in the low column."""
        return "on" if level.gate_on else ""

    def get_list_display(self, request):
        """The version is the API's compare-and-set token, not something a store's people
        read; staff keep it for support."""
        if self.sees_every_store(request):
            return self.list_display
        return [field for field in self.list_display if field != "version"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "reorder_point":  # the service's range, as a form error
            return forms.IntegerField(min_value=0, max_value=MAX_QUANTITY, label="Reorder point")
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_queryset(self, request):
        gate_on = Exists(FlashSaleGate.objects.filter(level=OuterRef("pk")))
        return (
            super()
            .get_queryset(request)
            .select_related("store", "product")
            .annotate(gate_on=gate_on)
        )

    def is_manager_of(self, request, level) -> bool:
        """The user manages the level's store: by membership, or as staff holding
        ``stock.change_stocklevel`` (``stores.access``). Remembered for the request, as
        Django asks for every button of the page."""
        answers = request.__dict__.setdefault("_manages_store", {})
        if level.store_id not in answers:
            _, role = role_in_store(request.user, level.store)
            answers[level.store_id] = role is not None and role.includes(Role.MANAGER)
        return answers[level.store_id]

    def has_change_permission(self, request, obj=None):
        """Managers edit a level's reorder point; nothing else."""
        return obj is not None and self.is_manager_of(request, obj)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A non-manager posting the level's form is told why it is refused (Django's
        own refusal has no words)."""
        if request.method == "POST" and object_id is not None:
            level = self.get_object(request, unquote(object_id))
            if level is not None:
                require_manager(request.user, level.store, to="change its reorder points")
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if "reorder_point" in form.changed_data:
            stock_set_reorder_point(
                store=obj.store,
                product=obj.product,
                reorder_point=form.cleaned_data["reorder_point"],
                actor=request.user,
            )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        """The level's form, its operations for a manager, and its latest movements."""
        if obj is not None:
            context["latest_movements"] = list(movements_of_level(obj)[:LATEST_MOVEMENTS])
            context["level_movements_url"] = level_movements_url(obj)
            context["stock_operations"] = []
            context["product_stock_url"] = reverse(
                "admin:stock_stocklevel_product", args=[obj.product_id]
            )
            if self.is_manager_of(request, obj):
                context["stock_operations"] = [
                    (operation.title, reverse(f"admin:stock_stocklevel_{name}", args=[obj.pk]))
                    for name, operation in OPERATIONS.items()
                ]
                context["low_stock_url"] = reverse("low-stock", args=[obj.store.code])
        return super().render_change_form(request, context, add, change, form_url, obj)

    def history_view(self, request, object_id, extra_context=None):
        """The level's stock changes, newest first, and its reorder point changes.

        Django's history lists the admin's LogEntry rows, which no stock change writes (the
        services write the ledger and the audit log), so it would say "no change history".
        """
        level = self.get_object(request, unquote(object_id))
        if level is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, level):
            raise PermissionDenied
        paginator = Paginator(movements_of_level(level), HISTORY_PAGE_SIZE)
        movements = paginator.get_page(request.GET.get(PAGE_VAR))
        reorder_point_changes = audit_events_visible_to(request.user).filter(
            action="stock.reorder_point",
            object_type="stock.stocklevel",
            object_id=str(level.pk),
        )[:HISTORY_PAGE_SIZE]
        context = {
            **self.admin_site.each_context(request),
            "title": f"History: {level}",
            "subtitle": None,
            "object": level,
            "opts": self.opts,
            "movements": movements,
            "page_range": paginator.get_elided_page_range(movements.number),
            "page_var": PAGE_VAR,
            "level_movements_url": level_movements_url(level),
            "reorder_point_changes": list(reorder_point_changes),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/stock/stocklevel/history.html", context)

    def product_stock_view(self, request, product_id):
        """One product's level in each store the user sees, for any role: the catalog's
        product pages are staff's."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        product = get_object_or_404(Product, pk=product_id)
        levels = stock_levels_of_product_visible_to(product, request.user)
        paginator = Paginator(levels, PRODUCT_PAGE_SIZE)
        page = paginator.get_page(request.GET.get(PAGE_VAR))
        context = {
            **self.admin_site.each_context(request),
            "title": f"{product.name} ({product.sku}) in your stores",
            "opts": self.opts,
            "product": product,
            "levels": page,
            "page_range": paginator.get_elided_page_range(page.number),
            "page_var": PAGE_VAR,
            "total_available": total_available(levels),
        }
        return TemplateResponse(request, "admin/stock/stocklevel/product.html", context)

    # --- Actions on several levels ------------------------------------------------------

    def has_manage_permission(self, request) -> bool:
        """The actions are offered to whoever manages some store; each run checks the
        stores of the levels chosen."""
        return highest_role_anywhere(request.user) is Role.MANAGER

    @admin.action(permissions=["manage"], description="Transfer selected levels to a store…")
    def transfer_selected(self, request, queryset):
        """Several products of one store to another in one ``stock_transfer``: all lines
        or none, with the operator's note on every movement."""
        levels = list(queryset.order_by("product__sku")[: MAX_LEVELS_PER_ACTION + 1])
        refusal = None
        if len(levels) > MAX_LEVELS_PER_ACTION:
            refusal = f"Select at most {MAX_LEVELS_PER_ACTION} levels for one transfer."
        elif len({level.store_id for level in levels}) != 1:
            refusal = "A transfer moves stock out of one store: select levels of one store only."
        else:
            try:
                require_manager(request.user, levels[0].store, to="transfer stock")
            except PermissionDenied as denied:
                refusal = str(denied)
        if refusal:
            messages.error(request, f"{refusal} Nothing was moved.")
            return None
        from_store = levels[0].store
        applying = "apply" in request.POST
        form = BulkTransferForm(
            request.POST if applying else None, from_store=from_store, levels=levels
        )
        status = 400 if applying else 200
        if applying and form.is_valid():
            lines = form.lines()
            to_store = form.cleaned_data["to_store"]
            try:
                stock_transfer(
                    from_store=from_store,
                    to_store=to_store,
                    lines=[StockLine(level.product, quantity) for level, quantity in lines],
                    note=form.cleaned_data["note"],
                    actor=request.user,
                )
            except StockError as refused:
                messages.error(request, f"{refused.detail} Nothing was moved.")
                status = 409
            else:
                units = sum(quantity for _, quantity in lines)
                messages.success(
                    request,
                    f"Moved {len(lines)} product{'' if len(lines) == 1 else 's'} ({units} "
                    f"unit{'' if units == 1 else 's'}) from {from_store.code} to {to_store.code}.",
                )
                return None
        return self.action_page(
            request,
            "transfer_selected",
            f"Transfer from {from_store.code}",
            form,
            levels,
            submit="Transfer",
            status=status,
        )

    @admin.action(permissions=["manage"], description="Set the reorder point of selected levels…")
    def set_reorder_point_selected(self, request, queryset):
        """One reorder point for several levels through ``stock_set_reorder_points`` (one
        ordered lock round, audited one by one), all or none. Levels that have it already
        are left alone."""
        levels = self.levels_managed(request, queryset, refusal="set its reorder points")
        if levels is None:
            return None
        applying = "apply" in request.POST
        form = ReorderPointForm(request.POST if applying else None)
        if applying and form.is_valid():
            value = form.cleaned_data["reorder_point"]
            changing = [level for level in levels if level.reorder_point != value]
            if changing:
                stock_set_reorder_points(
                    pairs=[(level.store, level.product) for level in changing],
                    reorder_point=value,
                    actor=request.user,
                )
            kept = len(levels) - len(changing)
            messages.success(
                request,
                f"Reorder point {value} set for {len(changing)} "
                f"level{'' if len(changing) == 1 else 's'}"
                + (f"; {kept} had it already." if kept else "."),
            )
            return None
        return self.action_page(
            request,
            "set_reorder_point_selected",
            "Set the reorder point",
            form,
            levels,
            submit="Set reorder point",
            status=400 if applying else 200,
        )

    @admin.action(permissions=["manage"], description="Switch the flash-sale gate on")
    def switch_gate_on_selected(self, request, queryset):
        return self.switch_gates(request, queryset, enabled=True)

    @admin.action(permissions=["manage"], description="Switch the flash-sale gate off")
    def switch_gate_off_selected(self, request, queryset):
        return self.switch_gates(request, queryset, enabled=False)

    def switch_gates(self, request, queryset, *, enabled: bool) -> None:
        """``gate_switch`` for each chosen level (audited one by one), in the stores the
        user manages only: levels of another store refuse the whole choice."""
        levels = self.levels_managed(request, queryset, refusal="switch its flash-sale gates")
        if levels is None:
            return
        switched = [
            level
            for level in levels
            if gate_switch(
                store=level.store, product=level.product, enabled=enabled, actor=request.user
            )
        ]
        kept = len(levels) - len(switched)
        state = "on" if enabled else "off"
        message = (
            f"Flash-sale gate switched {state} for {len(switched)} "
            f"level{'' if len(switched) == 1 else 's'}"
            + (f"; {kept} had it {state} already." if kept else ".")
        )
        messages.success(request, message)
        if enabled and not gates_have_tokens():
            messages.warning(
                request,
                "This site runs without Redis, which holds the gates' tokens: the gates are "
                "recorded and take effect once it runs with Redis.",
            )

    def levels_managed(self, request, queryset, *, refusal: str) -> list | None:
        """The chosen levels (at most ``MAX_LEVELS_PER_ACTION``) if the user manages
        every one's store; else None, with a message saying why."""
        levels = list(queryset.order_by("store__code", "product__sku")[: MAX_LEVELS_PER_ACTION + 1])
        if len(levels) > MAX_LEVELS_PER_ACTION:
            messages.error(
                request,
                f"Choose at most {MAX_LEVELS_PER_ACTION} levels at a time. Nothing was changed.",
            )
            return None
        managed = set(
            stores_visible_to(request.user, role=Role.MANAGER)
            .filter(pk__in={level.store_id for level in levels})
            .values_list("pk", flat=True)
        )
        not_managed = sorted(
            {level.store.code for level in levels if level.store_id not in managed}
        )
        if not_managed:
            messages.error(
                request,
                f"Only a store's managers {refusal}; you do not manage "
                f"{', '.join(not_managed)}. Nothing was changed.",
            )
            return None
        return levels

    def action_page(self, request, action, title, form, levels, *, submit, status):
        """The form an action asks for, posted back to the list with the chosen levels."""
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "form": form,
            "levels": levels,
            "action": action,
            "submit": submit,
        }
        return TemplateResponse(
            request, "admin/stock/stocklevel/action_form.html", context, status=status
        )

    # --- CSV files of a store's stock ---------------------------------------------------

    def changelist_view(self, request, extra_context=None):
        """The list, with "Export CSV" and "Import CSV" for whoever manages a store: of
        the store the list is filtered by, else the pages ask which store."""
        # Without the navigation sidebar, as the movement list: its width is the columns'.
        extra = {"is_nav_sidebar_enabled": False}
        if highest_role_anywhere(request.user) is Role.MANAGER:
            code = request.GET.get("store")
            query = f"?{urlencode({'store': code})}" if code else ""
            extra["export_url"] = reverse("admin:stock_stocklevel_export") + query
            extra["import_url"] = reverse("admin:stock_stocklevel_import") + query
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def export_view(self, request):
        """``?store=CODE``: the store's stock as a CSV download (``export_stock``'s file,
        with each level's version, so that an edited copy can be uploaded again). Without
        it, a page to choose one of the stores the user manages."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        code = request.GET.get("store")
        if code:
            store = store_for_page(request.user, code, role=Role.MANAGER)
            return stock_csv_response(store)
        form = StockExportForm(user=request.user)
        if not form.fields["store"].queryset.exists():
            raise PermissionDenied(NO_MANAGED_STORE)
        return self.csv_page(request, "Export a store's stock as CSV", form, "csv_export.html")

    def import_view(self, request):
        """Upload a CSV file of counts or adjustments for a store the user manages: read
        and applied as ``import_stock`` does (``operator_io``), all rows or none; every
        problem is listed by its line, and nothing changes (400 for a file that cannot
        be read, 409 for rows the services refuse)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        code = request.GET.get("store")
        if request.method == "GET" and code:
            store_for_page(request.user, code, role=Role.MANAGER)
        form = StockImportForm(
            request.POST or None, request.FILES or None, user=request.user, initial={"store": code}
        )
        if not form.fields["store"].queryset.exists():
            raise PermissionDenied(NO_MANAGED_STORE)
        status, problems = 200, []
        if request.method == "POST":
            status = 400
            if form.is_valid():
                data = form.cleaned_data
                store, (name, text) = data["store"], data["file"]
                try:
                    mode, rows = parse_stock_csv(text, mode=data["mode"] or None, store=store)
                    applied, unchanged = apply_stock_rows(
                        mode,
                        rows,
                        reason=data["reason"],
                        source=f"upload {name}",
                        force=data["force"],
                        actor=request.user,
                        note=data["note"],
                    )
                except StockFileInvalid as invalid:
                    problems = invalid.problems
                except StockImportRefused as refused:
                    status, problems = 409, refused.problems
                else:
                    messages.success(request, import_summary(name, mode, applied, unchanged, store))
                    changelist = reverse("admin:stock_stocklevel_changelist")
                    return redirect(f"{changelist}?{urlencode({'store': store.code})}")
        return self.csv_page(
            request,
            "Import a CSV file of counts or adjustments",
            form,
            "csv_import.html",
            status=status,
            problems=problems,
        )

    def csv_page(self, request, title, form, template, *, status=200, **context):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "form": form,
            **context,
        }
        return TemplateResponse(
            request, f"admin/stock/stocklevel/{template}", context, status=status
        )

    def get_urls(self):
        page_urls = [
            path(
                "product/<int:product_id>/",
                self.admin_site.admin_view(self.product_stock_view),
                name="stock_stocklevel_product",
            ),
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="stock_stocklevel_export",
            ),
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="stock_stocklevel_import",
            ),
        ]
        operation_urls = [
            path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(self.operation_view),
                {"operation": name},
                name=f"stock_stocklevel_{name}",
            )
            for name in OPERATIONS
        ]
        return page_urls + operation_urls + super().get_urls()

    def operation_view(self, request, object_id, operation):
        """A stock operation's form; on submit the service runs, and its refusal (not
        enough stock, a count that raced another change) is shown as a message."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        level = self.get_object(request, object_id)
        if level is None:
            raise Http404("No such stock level in your stores.")
        chosen = OPERATIONS[operation]
        require_manager(request.user, level.store, to=chosen.what)
        kwargs = {"from_store": level.store} if operation == "transfer" else {}
        initial = {"expected_version": level.version, "on_hand": level.on_hand}
        form = chosen.form_class(request.POST or None, initial=initial, **kwargs)
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                done = chosen.apply(level, form.cleaned_data, request.user)
            except StockError as refusal:
                messages.error(request, refusal.detail)
                status = 409
                # Show the level as it is now; a count is then made against this version.
                level = self.get_object(request, object_id)
                data = request.POST.copy()
                data["expected_version"] = level.version
                form = chosen.form_class(data, initial=initial, **kwargs)
            else:
                messages.success(request, done)
                return redirect("admin:stock_stocklevel_change", level.pk)
        elif request.method == "POST":
            status = 400
        context = {
            **self.admin_site.each_context(request),
            "title": f"{chosen.title}: {level.product.sku} in {level.store.code}",
            "form": form,
            "level": level,
            "opts": self.opts,
            "original": level,
        }
        return TemplateResponse(
            request, "admin/stock/stocklevel/operation.html", context, status=status
        )


class MovementDateFilter(admin.DateFieldListFilter):
    """Today, the past 7 days, this month, this year: by ``created_at``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "date"


class SkuFilter(admin.SimpleListFilter):
    """One product's movements (``?sku=``), the filter a level's page links to. Not
    offered as a list of choices: a catalog has too many products for a sidebar."""

    title = "product"
    parameter_name = "sku"

    def lookups(self, request, model_admin):
        chosen = request.GET.get(self.parameter_name)
        return [(chosen, chosen)] if chosen else []

    def queryset(self, request, queryset):
        """By the product's id, looked up first: with a store chosen too, the rows come
        from the index (store, product, -id) in order."""
        if not self.value():
            return queryset
        product = product_by_sku(self.value())
        return queryset.none() if product is None else queryset.filter(product_id=product.pk)


@admin.register(Movement)
class MovementAdmin(StoreScopedAdmin):
    """The stock ledger, read-only.

    The list fits a 1,400 px screen next to the admin's sidebars: the product is its SKU
    over its name, the change of on hand and reserved one column, and the reference and
    note are cut to a bounded width (the whole text is the cell's tooltip).
    """

    list_display = [
        "when", "store", "product_label", "kind", "change", "reason", "reference_short",
        "actor", "note_short",
    ]  # fmt: skip
    list_select_related = ["store", "product", "actor"]
    list_filter = [StoreFilter, "kind", ("created_at", MovementDateFilter), SkuFilter]
    # A movement's page: its store, product and actor as text (``store_text``).
    fields = [
        "when", "store_label", "product_text", "kind", "change", "reason", "reference", "note",
        "actor_name",
    ]  # fmt: skip
    readonly_fields = [*fields, "version"]
    search_fields = ["product__sku", "product__name", "reference"]
    ordering = ["-id"]
    sortable_at_scale = ("when",)  # by id

    change_list_template = "admin/stock/movement/change_list.html"

    def changelist_view(self, request, extra_context=None):
        """Without the admin's navigation sidebar (the breadcrumbs lead back): its width
        is what the ledger's columns need."""
        extra_context = {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("store", "product", "actor")

    def get_fields(self, request, obj=None):
        """Staff also see the level's version the movement made (members never see
        versions, the API's bookkeeping)."""
        return self.fields + (["version"] if self.sees_every_store(request) else [])

    @admin.display(description="store")
    def store_label(self, movement):
        return store_text(movement.store)

    @admin.display(description="product")
    def product_text(self, movement):
        return product_text(movement.product)

    @admin.display(description="actor")
    def actor_name(self, movement):
        return movement.actor.username if movement.actor else None

    @admin.display(description="version")
    def version(self, movement):
        return movement.version_after

    @admin.display(ordering="id", description="when")
    def when(self, movement):
        return date_format(localtime(movement.created_at), "Y-m-d H:i")

    @admin.display(ordering="product__sku", description="product")
    def product_label(self, movement):
        return format_html(
            '{}<br><span class="quiet">{}</span>',
            movement.product.sku,
            shortened(movement.product.name, PRODUCT_NAME_SHOWN),
        )

    @admin.display(description="change")
    def change(self, movement):
        return movement_change(movement)

    @admin.display(ordering="reference", description="reference")
    def reference_short(self, movement):
        return shortened(movement.reference, REFERENCE_SHOWN)

    @admin.display(description="note")
    def note_short(self, movement):
        return shortened(movement.note, NOTE_SHOWN)


class ReservationLineInline(admin.TabularInline):
    model = ReservationLine
    fields = ["product_label", "quantity"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return True  # shown inside a reservation the user may already see

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("product")

    @admin.display(description="product")
    def product_label(self, line):
        return product_text(line.product)


@admin.register(Reservation)
class ReservationAdmin(StoreScopedAdmin):
    """Checkout holds, read-only (clients commit and release them through the API)."""

    list_display = ["id", "store", "status", "reference", "created_at", "expires_at", "closed_via"]
    list_select_related = ["store"]
    list_filter = [StoreFilter, "status"]
    search_fields = ["reference"]
    ordering = ["-created_at"]
    inlines = [ReservationLineInline]
    # A hold's page: its store and the people who opened and closed it as text.
    fields = [
        "reservation_id", "store_label", "status", "reference", "created_at", "created_by_name",
        "expires_at", "closed_at", "closed_by_name", "closed_via",
    ]  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("store", "created_by", "closed_by")

    @admin.display(description="ID")
    def reservation_id(self, reservation):
        return reservation.pk

    @admin.display(description="store")
    def store_label(self, reservation):
        return store_text(reservation.store)

    @admin.display(description="created by")
    def created_by_name(self, reservation):
        return reservation.created_by.username if reservation.created_by else None

    @admin.display(description="closed by")
    def closed_by_name(self, reservation):
        return reservation.closed_by.username if reservation.closed_by else None
