"""Forms of the admin's stock operations. They validate input; the services write."""

from django import forms

from stores.access import stores_visible_to
from stores.models import Role, Store

from .models import AdjustmentReason
from .operator_io import ADJUST, SET
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


def destination_stores(from_store):
    """Any other active store may receive, as over the API: moving stock out of a store
    is its manager's call, whoever runs the destination."""
    return Store.objects.filter(is_active=True).exclude(pk=from_store.pk).order_by("code")


class TransferForm(forms.Form):
    to_store = forms.ModelChoiceField(queryset=None, to_field_name="code")
    quantity = quantity_field()
    note = note_field()

    def __init__(self, *args, from_store, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_store"].queryset = destination_stores(from_store)


class BulkTransferForm(forms.Form):
    """Several products of one store to another: a quantity per level (blank leaves the
    product out), one destination and one note, for one ``stock_transfer``."""

    to_store = forms.ModelChoiceField(queryset=None, to_field_name="code")
    note = note_field()

    def __init__(self, *args, from_store, levels, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_store"].queryset = destination_stores(from_store)
        self.levels = levels
        for level in levels:
            self.fields[self.quantity_name(level)] = quantity_field(
                required=False,
                label=f"{level.product.sku} ({level.product.name})",
                help_text=f"{level.available} available",
            )
        self.order_fields(["to_store", *map(self.quantity_name, levels), "note"])

    @staticmethod
    def quantity_name(level) -> str:
        return f"quantity_{level.pk}"

    def clean(self):
        cleaned = super().clean()
        if not self.lines() and not any(map(self.has_error, map(self.quantity_name, self.levels))):
            raise forms.ValidationError("Enter a quantity for at least one product.")
        return cleaned

    def lines(self) -> list[tuple]:
        """(level, quantity) of every level given a quantity."""
        quantities = [
            (level, self.cleaned_data.get(self.quantity_name(level))) for level in self.levels
        ]
        return [(level, quantity) for level, quantity in quantities if quantity]


class ReorderPointForm(forms.Form):
    """One reorder point for several levels."""

    reorder_point = forms.IntegerField(
        min_value=0,
        max_value=MAX_QUANTITY,
        help_text="A level whose available units are at or below it counts as low stock.",
    )


# --- CSV files of a store's stock -----------------------------------------------------

# The largest CSV upload read (a store of 10,000 products exports about 500 KB).
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
IMPORT_MODES = [
    ("", "From the file's header (on_hand: counts, delta: adjustments)"),
    (SET, "Counts: on_hand is what was counted"),
    (ADJUST, "Adjustments: delta is added to on hand"),
]


def managed_store_field(user) -> forms.ModelChoiceField:
    """The stores ``user`` manages (``stores.access``), chosen by code."""
    return forms.ModelChoiceField(
        queryset=stores_visible_to(user, role=Role.MANAGER).order_by("code"),
        to_field_name="code",
    )


class StockExportForm(forms.Form):
    """Which store's stock to download (the export page without ``?store=``)."""

    store = forms.ModelChoiceField(queryset=None, to_field_name="code")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store"] = managed_store_field(user)


IMPORT_NOTE_HELP = (
    "Kept on every movement's reference after the file's name (255 characters in all)."
)


class StockImportForm(forms.Form):
    """A CSV file of counts or adjustments for one store the user manages. The rows are
    checked and applied by ``operator_io`` (``parse_stock_csv``, ``apply_stock_rows``);
    the form checks what the file is: its size and its encoding."""

    store = forms.ModelChoiceField(queryset=None, to_field_name="code")
    file = forms.FileField(
        help_text="CSV with a header: store,sku,on_hand (counts) or store,sku,delta "
        "(adjustments). An exported file may be uploaded as it is, with its on_hand "
        "edited: its other columns (reserved, available, reorder_point) are not read."
    )
    mode = forms.ChoiceField(choices=IMPORT_MODES, required=False)
    reason = forms.ChoiceField(
        choices=AdjustmentReason.choices,
        initial=AdjustmentReason.CORRECTION,
        help_text="Recorded on every movement; an adjustment's sign must fit it "
        "(damaged and lost lower stock, found and returned raise it).",
    )
    note = note_field()
    force = forms.BooleanField(
        required=False,
        label="Overwrite newer changes",
        help_text="Apply rows whose level has changed since the file was exported "
        "(their version column), undoing those changes.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store"] = managed_store_field(user)
        self.fields["note"].help_text = IMPORT_NOTE_HELP

    def clean_file(self):
        """The file's text: UTF-8, a byte order mark allowed (spreadsheets write one)."""
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is larger than the limit of {MAX_UPLOAD_BYTES:,} bytes."
            )
        content = upload.read()
        try:
            return upload.name, content.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise forms.ValidationError(
                f"The file is not UTF-8 text ({error.reason} at byte {error.start})."
            ) from None
