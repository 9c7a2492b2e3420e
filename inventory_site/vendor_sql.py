"""Raw SQL that migrations run only on the database vendor it is written for."""


def run_for_vendor(postgresql: str, sqlite: str):
    """A RunPython function executing ``postgresql`` or ``sqlite``, whichever fits."""

    def run(apps, schema_editor):
        sql = {"postgresql": postgresql, "sqlite": sqlite}.get(schema_editor.connection.vendor)
        if sql:
            schema_editor.execute(sql, params=None)

    return run
