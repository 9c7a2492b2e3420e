import datetime

from django import forms
from django_filters import IsoDateTimeFilter
from django_filters.fields import IsoDateTimeField


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
