"""Deliveries from a cursor over the log: the subscription's cursor says what was sent
once (``sent_seq``, was ``last_enqueued_seq``: the rows of the events up to it exist
either way), a run holds the subscription (``sending_until``), and a receiver that did
not answer holds its events back (``held_until``). A delivery row is now written when
its first attempt went; ``pending`` is left to redeliveries (rows already pending are
still due, and the next run tries them)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("events", "0006_webhookdelivery_finished_idx")]

    operations = [
        migrations.RemoveConstraint(
            model_name="webhooksubscription", name="webhooksub_cursor_non_negative"
        ),
        migrations.RenameField(
            model_name="webhooksubscription", old_name="last_enqueued_seq", new_name="sent_seq"
        ),
        migrations.AddConstraint(
            model_name="webhooksubscription",
            constraint=models.CheckConstraint(
                condition=models.Q(("sent_seq__gte", 0)), name="webhooksub_cursor_non_negative"
            ),
        ),
        migrations.AddField(
            model_name="webhooksubscription",
            name="sending_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="webhooksubscription",
            name="held_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Sent again by hand; waiting for its attempt"),
                    ("failed", "Failed; retried at next_attempt_at"),
                    ("succeeded", "Delivered"),
                    ("giving_up", "Every retry failed; no more attempts"),
                ],
                default="pending",
                max_length=12,
            ),
        ),
    ]
