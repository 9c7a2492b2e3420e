"""Admin changelists over tables of millions of rows (stock levels, the ledger, the audit
log): Django's changelist counts every row it could show, and pages through them with
OFFSET; here a count is only made when it is cheap, and estimated otherwise."""

from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import EmptyResultSet
from django.core.paginator import EmptyPage, Paginator
from django.db import connections
from django.utils.functional import cached_property

from .query_plans import queryset_plan
from .replicas.routing import replica_reads

# Up to this many rows a list is counted exactly; beyond it an estimate is shown.
EXACT_COUNT_LIMIT = 10_000
# The planner's cost (its own units: 1 = reading one page in sequence) above which a
# filtered list is not counted at all but estimated. Counting 10,000 rows through an
# index costs a few hundred; reading a large table to find them, far more.
EXACT_COUNT_MAX_COST = 20_000


class EstimatedCountPaginator(Paginator):
    """Django's paginator, counting only what is cheap to count (``estimated`` says
    whether ``count`` is an estimate).

    On PostgreSQL a list without filters takes its table's row count from the
    statistics (``pg_class.reltuples``, what the last ANALYZE counted) once that is
    above ``EXACT_COUNT_LIMIT``, and is counted below it (one statement either way). A
    filtered list (a member's stores, a filter) is counted up to that limit when the
    planner expects counting to cost little (a second statement: EXPLAIN first), and
    estimated by the planner beyond the limit or when it would cost more. Elsewhere
    (SQLite: the embedded mode, one shop's data) every list is counted.
    """

    estimated = False

    @cached_property
    def count(self):
        queryset = self.object_list
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return super().count
        try:
            return self._count_or_estimate(queryset, connection)
        except EmptyResultSet:  # filtered by an empty list of stores: no query to make
            return 0

    def _count_or_estimate(self, queryset, connection) -> int:
        first = queryset.order_by().values("pk")[: EXACT_COUNT_LIMIT + 1]
        query = queryset.query
        if not (query.where or query.distinct or query.combinator):
            rows, counted = _rows_or_count(connection, queryset.model, first)
            if counted is not None and counted <= EXACT_COUNT_LIMIT:
                return counted
            self.estimated = True
            return max(rows, EXACT_COUNT_LIMIT + 1)
        plan = queryset_plan(first)  # a Limit over the rows the filters select
        if plan["Total Cost"] <= EXACT_COUNT_MAX_COST:
            counted = first.count()
            if counted <= EXACT_COUNT_LIMIT:
                return counted
        self.estimated = True
        return max(round(plan["Plans"][0]["Plan Rows"]), EXACT_COUNT_LIMIT + 1)

    def validate_number(self, number):
        """An estimate may fall short of the rows there are: a page past it is shown
        (empty, if there is none) rather than refused."""
        try:
            return super().validate_number(number)
        except EmptyPage:
            if self.estimated and int(number) > 1:
                return int(number)
            raise

    def page(self, number):
        """Without an estimate's last page cut short at the estimate."""
        if not self.estimated:
            return super().page(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        return self._get_page(self.object_list[bottom : bottom + self.per_page], number, self)


def _rows_or_count(connection, model, first) -> tuple[int, int | None]:
    """(the table's rows by its statistics, None) when they are above the limit; else
    (the same, the rows of ``first`` counted): one statement, which counts only when
    it must (PostgreSQL evaluates a CASE's subquery when the CASE reaches it)."""
    sql, params = first.query.get_compiler(connection.alias).as_sql()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples, CASE WHEN reltuples > %s THEN NULL"
            f" ELSE (SELECT count(*) FROM ({sql}) AS first_rows) END"
            " FROM pg_class WHERE oid = to_regclass(%s)",
            [EXACT_COUNT_LIMIT, *params, connection.ops.quote_name(model._meta.db_table)],
        )
        rows, counted = cursor.fetchone()
    return round(rows), counted


class EstimatedCountChangeList(ChangeList):
    """Django's changelist with ``EstimatedCountPaginator`` in mind, and sorting by the
    columns ``sortable_by`` offers only."""

    @replica_reads
    def get_results(self, request):
        """Always a LIMIT: where Django fetches the whole list because the count said
        it fits a page (or "Show all"), the rows may have grown since, or the count was
        an estimate; an estimate never offers "Show all".

        Counted and read here, where a replica may serve them (``replica_reads``), not
        when the page is rendered; the filters and the user's stores were applied
        before, on the primary."""
        super().get_results(request)
        if self.paginator.estimated:
            self.can_show_all = False
        if self.show_all and self.can_show_all:
            self.result_list = self.queryset[: self.list_max_show_all]
        elif not self.multi_page:
            self.result_list = self.queryset[: self.list_per_page]
        len(self.result_list)  # read now: the queryset keeps the rows for the template

    def get_ordering_field(self, field_name):
        """None (not sorted by) for a column the admin does not offer to sort by, even
        when a hand-made ``?o=`` names it: sorting millions of rows by it would take
        seconds."""
        if self.sortable_by is not None and field_name not in self.sortable_by:
            return None
        return super().get_ordering_field(field_name)
