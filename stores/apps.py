from django.apps import AppConfig


class StoresConfig(AppConfig):
    name = "stores"
    verbose_name = "Stores"

    def ready(self):
        from . import receivers  # noqa: F401 - connects the lookup cache receivers
