from django.contrib.admin.apps import AdminConfig


class InventoryAdminConfig(AdminConfig):
    """django.contrib.admin with the project's own site as ``admin.site``."""

    default_site = "inventory_site.admin_site.InventoryAdminSite"
