"""A change of a level's reorder point writes a stock event too, with no movement behind
it: ``movement_id`` may be empty.

On PostgreSQL this drops a NOT NULL (the table's trigger and the app role's grants stay
as they are). SQLite alters a column by copying the table into a new one, which loses
the append-only trigger of ``0004_stockevent_append_only``: it is installed again after
the copy, whichever way the migration runs."""

from django.db import migrations, models

from inventory_site.vendor_sql import run_for_vendor

SQLITE_INSTALL = """
CREATE TRIGGER IF NOT EXISTS events_stockevent_append_only BEFORE UPDATE ON events_stockevent
BEGIN
    SELECT RAISE(ABORT, 'events_stockevent is append-only: UPDATE refused');
END;
"""
SQLITE_REMOVE = "DROP TRIGGER IF EXISTS events_stockevent_append_only;"
reinstall = run_for_vendor("", SQLITE_INSTALL)
remove = run_for_vendor("", SQLITE_REMOVE)


class Migration(migrations.Migration):
    dependencies = [("events", "0004_stockevent_append_only")]

    operations = [
        migrations.RunPython(remove, reinstall),
        migrations.AlterField(
            model_name="stockevent",
            name="movement_id",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(reinstall, remove),
    ]
