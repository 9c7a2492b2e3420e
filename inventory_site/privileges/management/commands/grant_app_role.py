import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inventory_site.privileges.grants import RoleRefused, grant_app_role, read_grants


class Command(BaseCommand):
    help = (
        "Create the application's PostgreSQL role if needed and grant it exactly what the "
        "app needs on the installed models' tables: no UPDATE, DELETE or TRUNCATE on the "
        "stock ledger and the audit log. Run it as the tables' owner, after every migrate "
        "(bin/run migrate does when DATABASE_APP_ROLE is set); running it again changes "
        "nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "role", nargs="?", help="The role to grant to; default: DATABASE_APP_ROLE."
        )
        parser.add_argument(
            "--password-env",
            metavar="VARIABLE",
            help="Set the role's password from this environment variable (never from the "
            "command line, where other users of the machine could read it).",
        )
        parser.add_argument(
            "--sql",
            action="store_true",
            help="Print the GRANT statements for this database instead of running them.",
        )
        parser.add_argument("--database", default="default", help="Database alias.")

    def handle(self, *args, role, password_env, sql, database, **options):
        role = role or settings.DATABASE_APP_ROLE
        if not role:
            raise CommandError("Name the role, or set DATABASE_APP_ROLE.")
        password = None
        if password_env:
            password = os.environ.get(password_env)
            if not password:
                raise CommandError(f"--password-env {password_env}: the variable is empty.")
        try:
            if sql:
                grants = read_grants(role, using=database)
                self.stdout.write(";\n".join(grants.statements()) + ";")
                return
            grants = grant_app_role(role, password=password, using=database)
        except RoleRefused as refusal:
            raise CommandError(str(refusal)) from None
        if grants.missing_tables:
            self.stderr.write(
                "Not in the database yet (run migrate first): " + ", ".join(grants.missing_tables)
            )
        self.stdout.write(f"Granted to {role} in {grants.database} (schema {grants.schema}):")
        for privileges, tables in grants.by_privileges().items():
            named = ", ".join(tables) if len(tables) <= 3 else f"{len(tables)} tables"
            self.stdout.write(f"  {', '.join(privileges):<30} {named}")
        self.stdout.write(f"  {'USAGE, SELECT':<30} {len(grants.sequences)} sequences")
        if grants.functions:
            self.stdout.write(f"  {'EXECUTE':<30} {', '.join(grants.functions)}")
        unchangeable = [
            table
            for table, privileges in grants.tables.items()
            if not {"UPDATE", "DELETE"} & set(privileges)
        ]
        self.stdout.write(
            self.style.SUCCESS(
                f"{role} may not UPDATE, DELETE or TRUNCATE {', '.join(unchangeable)}; "
                "it may TRUNCATE no table."
            )
        )
