"""Make the stock ledger append-only in the database itself.

PostgreSQL refuses UPDATE and DELETE of a movement row. SQLite refuses UPDATE only:
Django empties SQLite tables with DELETE between transactional tests, while on
PostgreSQL it uses TRUNCATE, which row triggers do not see.
"""

from django.db import migrations

from inventory_site.vendor_sql import run_for_vendor

POSTGRESQL_INSTALL = """
CREATE FUNCTION stock_movement_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'stock_movement is append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER stock_movement_append_only
    BEFORE UPDATE OR DELETE ON stock_movement
    FOR EACH ROW EXECUTE FUNCTION stock_movement_append_only();
"""
POSTGRESQL_REMOVE = """
DROP TRIGGER IF EXISTS stock_movement_append_only ON stock_movement;
DROP FUNCTION IF EXISTS stock_movement_append_only();
"""
SQLITE_INSTALL = """
CREATE TRIGGER stock_movement_append_only BEFORE UPDATE ON stock_movement
BEGIN
    SELECT RAISE(ABORT, 'stock_movement is append-only: UPDATE refused');
END;
"""
SQLITE_REMOVE = "DROP TRIGGER IF EXISTS stock_movement_append_only;"


class Migration(migrations.Migration):
    dependencies = [("stock", "0001_initial")]

    operations = [
        migrations.RunPython(
            run_for_vendor(POSTGRESQL_INSTALL, SQLITE_INSTALL),
            run_for_vendor(POSTGRESQL_REMOVE, SQLITE_REMOVE),
        ),
    ]
