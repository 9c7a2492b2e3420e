import datetime

import django_filters
from django import forms
from django.forms.utils import ErrorDict, ErrorList
from django_filters import IsoDateTimeFilter, widgets
from django_filters.constants import EMPTY_VALUES
from django_filters.fields import BaseCSVField, IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from rest_framework.settings import api_settings

from .pagination import PageNumberPagination


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, converted to UTC before it reaches the database.

    PostgreSQL refuses offsets beyond +-15:59 that Python accepts, and a time at the edge
    of the calendar can overflow once converted; both are the client's 400, not a 500.
    """

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(datetime.UTC)
        except OverflowError:
            raise forms.ValidationError("This time is out of range.", code="invalid") from None


class UtcIsoDateTimeFilter(IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


# --- Refusing what would otherwise be ignored -------------------------------------------

# Query parameters a page-numbered list reads besides its filters: the page, the page
# size and DRF's ``?format=``. A cursor-paginated list reads ``cursor`` instead of
# ``page`` (``passed_through``).
PASSED_THROUGH = frozenset(
    {
        PageNumberPagination.page_query_param,
        PageNumberPagination.page_size_query_param,
        api_settings.URL_FORMAT_OVERRIDE,
    }
)


def passed_through(view) -> frozenset[str]:
    """The query parameters ``view`` reads besides its filters: its paginator's and
    ``?format=``."""
    paginator = getattr(view, "paginator", None)
    if paginator is None:
        return PASSED_THROUGH
    names = (
        getattr(paginator, "page_query_param", None),
        getattr(paginator, "cursor_query_param", None),
        getattr(paginator, "page_size_query_param", None),
        api_settings.URL_FORMAT_OVERRIDE,
    )
    return frozenset(name for name in names if name)


class ApiFilterSet(django_filters.FilterSet):
    """The FilterSet of every API list: a parameter it does not know is a mistake the
    client must hear of (``?skus=`` or ``?lowstock=`` would otherwise answer every row,
    and ``?page=`` on a cursor-paginated list the first page), so it is an error naming
    the parameter, as a malformed value is."""

    passed_through = PASSED_THROUGH  # set per view by FilterBackend

    def unknown_parameters(self) -> list[str]:
        return sorted(set(self.data) - set(self.filters) - self.passed_through)

    def is_valid(self) -> bool:
        return super().is_valid() and not self.unknown_parameters()

    @property
    def errors(self) -> ErrorDict:
        errors = ErrorDict(self.form.errors)
        filters = ", ".join(sorted(self.filters)) or "none"
        others = ", ".join(sorted(self.passed_through))
        for name in self.unknown_parameters():
            message = f"Unknown parameter; this list's filters are: {filters} (and {others})."
            errors[name] = ErrorList([forms.ValidationError(message, code="unknown")])
        return errors


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend (400 naming the parameter when the FilterSet is not
    valid), also for a list without a FilterSet: it takes no parameter but its
    paginator's."""

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            filterset.passed_through = passed_through(view)
        return filterset

    def filter_queryset(self, request, queryset, view):
        if self.get_filterset_class(view, queryset) is None:
            filterset = ApiFilterSet(request.query_params, queryset=queryset)
            filterset.passed_through = passed_through(view)
            if not filterset.is_valid():
                raise translate_validation(filterset.errors)
            return queryset
        return super().filter_queryset(request, queryset, view)


class BooleanWidget(widgets.BooleanWidget):
    """django-filter's true/false widget, passing on a value it does not know (as text)
    instead of dropping it."""

    def value_from_datadict(self, data, files, name):
        value = super().value_from_datadict(data, files, name)
        raw = data.get(name)
        if value is None and isinstance(raw, str) and raw != "":
            return raw
        return value


class StrictBooleanField(forms.NullBooleanField):
    """``true``/``false`` (or ``1``/``0``); anything else is an error rather than the
    "unknown" a NullBooleanField makes of it, which would switch the filter off."""

    widget = BooleanWidget

    def to_python(self, value):
        # The widget has turned every value it knows into True or False.
        if isinstance(value, str) and value not in self.empty_values:
            raise forms.ValidationError("Use true or false.", code="invalid")
        return super().to_python(value)


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class BoundedCSVField(BaseCSVField):
    """A comma-separated list of at most ``max_values`` values."""

    def __init__(self, *args, max_values: int, **kwargs):
        self.max_values = max_values
        super().__init__(*args, **kwargs)

    def clean(self, value):
        if value is not None and len(value) > self.max_values:
            raise forms.ValidationError(
                f"Send at most {self.max_values} values, separated by commas.", code="too_many"
            )
        return super().clean(value)


class CharInFilter(django_filters.BaseInFilter, django_filters.CharFilter):
    """``?name=a,b,c``: rows whose field is any of the values (``max_values`` at most)."""

    base_field_class = BoundedCSVField


class OrderingFilter(django_filters.OrderingFilter):
    """``?ordering=a,-b`` over the named fields, with ``tiebreaker`` last so that rows
    of equal values keep one order from page to page."""

    def __init__(self, *args, tiebreaker: str, **kwargs):
        self.tiebreaker = tiebreaker
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if value in EMPTY_VALUES:
            return qs
        ordered = super().filter(qs, value)
        descending = self.get_ordering_value(value[-1]).startswith("-")
        return ordered.order_by(
            *ordered.query.order_by, f"-{self.tiebreaker}" if descending else self.tiebreaker
        )
