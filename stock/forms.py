"""Forms of the admin's stock operations. They validate input; the services write."""

from django import forms

from stores.models import Store

from .models import AdjustmentReason
from .serializers import MAX_NOTE_LENGTH
from .services import MAX_QUANTITY, MAX_REFERENCE_LENGTH


def quantity_field(**kwargs):
    return forms.IntegerField(min_value=1, max_value=MAX_QUANTITY, **kwargs)


def note_field():
    return forms.CharField(max_length=MAX_NOTE_LENGTH, required=False, widget=forms.Textarea)


class ReceiveForm(forms.Form):
    quantity = quantity_field(help_text="Units delivered.")
    reference = forms.CharField(max_length=MAX_REFERENCE_LENGTH, required=False)
    note = note_field()


class AdjustForm(forms.Form):
    delta = forms.IntegerField(
        min_value=-MAX_QUANTITY,
        max_value=MAX_QUANTITY,
        help_text="Units to add (positive) or take away (negative).",
    )
    reason = forms.ChoiceField(choices=AdjustmentReason.choices)
    note = note_field()

    def clean_delta(self):
        delta = self.cleaned_data["delta"]
        if delta == 0:
            raise forms.ValidationError("An adjustment changes at least one unit.")
        return delta


class SetCountForm(forms.Form):
    on_hand = forms.IntegerField(min_value=0, max_value=MAX_QUANTITY, label="Counted on hand")
    reason = forms.ChoiceField(
        choices=[("", "---------"), *AdjustmentReason.choices], required=False
    )
    note = note_field()
    # The version the form was shown at: a count is refused if the level changed since.
    expected_version = forms.IntegerField(min_value=0, widget=forms.HiddenInput)


class TransferForm(forms.Form):
    to_store = forms.ModelChoiceField(queryset=None, to_field_name="code")
    quantity = quantity_field()
    note = note_field()

    def __init__(self, *args, from_store, **kwargs):
        super().__init__(*args, **kwargs)
        # Any other active store may receive, as over the API: moving stock out of a
        # store is its manager's call, whoever runs the destination.
        self.fields["to_store"].queryset = (
            Store.objects.filter(is_active=True).exclude(pk=from_store.pk).order_by("code")
        )
