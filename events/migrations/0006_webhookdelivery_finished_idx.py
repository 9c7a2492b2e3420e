"""The index of the deliveries' retention (``events.webhooks.retention``): finished
deliveries by when they finished, so that each prune batch reads the rows it deletes
and no more, however many deliveries are kept.

Built concurrently on PostgreSQL (``inventory_site.vendor_sql.AddIndexConcurrently``):
deliveries are written with every stock event, and a plain CREATE INDEX would hold them
for as long as it takes."""

from django.db import migrations, models

from inventory_site.vendor_sql import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("events", "0005_stockevent_movement_optional")]

    operations = [
        AddIndexConcurrently(
            model_name="webhookdelivery",
            index=models.Index(
                condition=models.Q(("status__in", ("succeeded", "giving_up"))),
                fields=["updated_at"],
                name="webhookdelivery_finished_idx",
            ),
        ),
    ]
