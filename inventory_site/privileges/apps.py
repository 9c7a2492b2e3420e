from django.apps import AppConfig


class PrivilegesConfig(AppConfig):
    """No models: a home for ``manage.py grant_app_role``, which concerns every app."""

    name = "inventory_site.privileges"
    label = "privileges"
