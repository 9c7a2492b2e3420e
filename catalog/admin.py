from django.contrib import admin
from django.urls import reverse

from stock.selectors import stock_levels_of_product_visible_to

from .models import Product
from .services import EDITABLE_FIELDS, product_create, product_update


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "price", "is_active", "updated_at"]
    list_filter = ["is_active"]
    search_fields = ["sku", "name"]

    def get_readonly_fields(self, request, obj=None):
        return ["sku"] if obj else []

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        """The product's first levels in the stores the user sees, and a link to all of
        them (the page store members reach from the stock list)."""
        if obj is not None:
            levels = stock_levels_of_product_visible_to(obj, request.user)
            context["product_levels"] = list(levels[:PRODUCT_LEVELS_SHOWN])
            context["product_stock_url"] = reverse("admin:stock_stocklevel_product", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request, obj, form, change):
        """Through the catalog services, so that admin saves are audited like API ones."""
        if change:
            changes = {
                field: form.cleaned_data[field]
                for field in form.changed_data
                if field in EDITABLE_FIELDS
            }
            if changes:
                # A fresh copy: ``obj`` already carries the new values, and the service
                # records what they replace.
                product_update(
                    product=Product.objects.get(pk=obj.pk), actor=request.user, **changes
                )
            return
        created = product_create(
            actor=request.user, **{field: getattr(obj, field) for field in PRODUCT_CREATE_FIELDS}
        )
        obj.pk, obj.created_at, obj.updated_at = created.pk, created.created_at, created.updated_at


PRODUCT_CREATE_FIELDS = ["sku", "name", "price", "description", "is_active"]
PRODUCT_LEVELS_SHOWN = 50  # on the product's page; the stock page has them all
