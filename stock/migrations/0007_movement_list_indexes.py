"""Indexes giving each of the ledger list's filters its rows in id order: a level's
movements (``?sku=``, and the low-stock page's latest movements of each level) and a
kind's in a store (``?kind=``), so that a page reads its rows and no more however long
the ledger grows.

Built concurrently on PostgreSQL (``inventory_site.vendor_sql.AddIndexConcurrently``):
the ledger of a large deployment holds millions of rows, and a plain CREATE INDEX would
hold every stock change for as long as it takes.
"""

from django.db import migrations, models

from inventory_site.vendor_sql import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("stock", "0006_bulk_job")]

    operations = [
        AddIndexConcurrently(
            model_name="movement",
            index=models.Index(fields=["store", "product", "-id"], name="movement_level_newest"),
        ),
        AddIndexConcurrently(
            model_name="movement",
            index=models.Index(fields=["store", "kind", "-id"], name="movement_store_kind_newest"),
        ),
    ]
