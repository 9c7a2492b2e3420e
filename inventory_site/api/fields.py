from rest_framework import serializers


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer. DRF's IntegerField would coerce "3", 3.0 and true; a stock
    quantity sent as anything but a number is a client bug worth a 400."""

    default_error_messages = {
        "invalid": "A whole number is required (not a string, float or boolean)."
    }

    def to_internal_value(self, data):
        if type(data) is not int:
            self.fail("invalid")
        return super().to_internal_value(data)
