"""A delivery's subscription and an attempt's delivery lose their single-column
indexes: each is the first column of a unique constraint already ((subscription, seq),
(delivery, number)), which serves the same lookups, so every delivery recorded kept
two indexes up to date for nothing."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("events", "0007_webhook_cursor_delivery")]

    operations = [
        migrations.AlterField(
            model_name="webhookattempt",
            name="delivery",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="log",
                to="events.webhookdelivery",
            ),
        ),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="subscription",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="deliveries",
                to="events.webhooksubscription",
            ),
        ),
    ]
