from django.apps import AppConfig


class StockConfig(AppConfig):
    name = "stock"
    verbose_name = "Stock"

    def ready(self):
        from . import checks, receivers  # noqa: F401 - registers the checks, connects receivers
