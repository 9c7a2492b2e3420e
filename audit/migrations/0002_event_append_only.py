"""Make audit events append-only in the database itself.

PostgreSQL refuses UPDATE always, and DELETE unless the transaction has set
``inventory.audit_prune`` to ``on``, which only ``audit.services.audit_prune`` (the
``prune_audit`` command) does. SQLite refuses UPDATE only: Django empties SQLite tables
with DELETE between transactional tests, while on PostgreSQL it uses TRUNCATE, which row
triggers do not see.
"""

from django.db import migrations

from inventory_site.vendor_sql import run_for_vendor

POSTGRESQL_INSTALL = """
CREATE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('inventory.audit_prune', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_event_append_only
    BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
"""
POSTGRESQL_REMOVE = """
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event;
DROP FUNCTION IF EXISTS audit_event_append_only();
"""
SQLITE_INSTALL = """
CREATE TRIGGER audit_event_append_only BEFORE UPDATE ON audit_event
BEGIN
    SELECT RAISE(ABORT, 'audit_event is append-only: UPDATE refused');
END;
"""
SQLITE_REMOVE = "DROP TRIGGER IF EXISTS audit_event_append_only;"


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunPython(
            run_for_vendor(POSTGRESQL_INSTALL, SQLITE_INSTALL),
            run_for_vendor(POSTGRESQL_REMOVE, SQLITE_REMOVE),
        ),
    ]
