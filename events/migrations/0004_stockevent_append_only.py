"""A stock event, once written, is never rewritten: the database refuses UPDATE of an
event row, as it does for the ledger (``stock.0002_movement_append_only``). DELETE stays
allowed, for the owner's pruning of events past their retention (the app's role may not
delete them: ``inventory_site.privileges``)."""

from django.db import migrations

from inventory_site.vendor_sql import run_for_vendor

POSTGRESQL_INSTALL = """
CREATE FUNCTION events_stockevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'events_stockevent is append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER events_stockevent_append_only
    BEFORE UPDATE ON events_stockevent
    FOR EACH ROW EXECUTE FUNCTION events_stockevent_append_only();
"""
POSTGRESQL_REMOVE = """
DROP TRIGGER IF EXISTS events_stockevent_append_only ON events_stockevent;
DROP FUNCTION IF EXISTS events_stockevent_append_only();
"""
SQLITE_INSTALL = """
CREATE TRIGGER events_stockevent_append_only BEFORE UPDATE ON events_stockevent
BEGIN
    SELECT RAISE(ABORT, 'events_stockevent is append-only: UPDATE refused');
END;
"""
SQLITE_REMOVE = "DROP TRIGGER IF EXISTS events_stockevent_append_only;"


class Migration(migrations.Migration):
    dependencies = [("events", "0003_webhook_delivery_plural")]

    operations = [
        migrations.RunPython(
            run_for_vendor(POSTGRESQL_INSTALL, SQLITE_INSTALL),
            run_for_vendor(POSTGRESQL_REMOVE, SQLITE_REMOVE),
        ),
    ]
