"""An index on the object type in sequence order: the admin's object type filter lists
the types there are by hopping through it (``audit.admin.IndexedValuesFilter``) and
reads the events of one type newest first, without reading the whole log.

Built concurrently on PostgreSQL, as the log holds millions of events.
"""

from django.db import migrations, models

from inventory_site.vendor_sql import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("audit", "0002_event_append_only")]

    operations = [
        AddIndexConcurrently(
            model_name="auditevent",
            index=models.Index(
                fields=["object_type", "-sequence"], name="audit_event_object_type_idx"
            ),
        ),
    ]
