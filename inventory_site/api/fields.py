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


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean. DRF's BooleanField would take "true", 1 and "yes"; a switch sent
    as anything but true or false is a client bug worth a 400."""

    default_error_messages = {"invalid": "true or false is required (not a string or number)."}

    def to_internal_value(self, data):
        if type(data) is not bool:
            self.fail("invalid")
        return data
