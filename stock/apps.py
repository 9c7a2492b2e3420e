from django.apps import AppConfig


class StockConfig(AppConfig):
    name = "stock"
    verbose_name = "Stock"

    def ready(self):
        from . import receivers  # noqa: F401 - connects the stock_changed receivers
