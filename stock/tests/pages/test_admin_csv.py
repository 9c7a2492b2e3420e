"""A manager exports a store's stock as CSV and uploads a CSV of counts or adjustments
for it, from the stock list: applied like ``import_stock`` (``apply_stock_rows``), all
rows or none, every problem named by its line."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from stock.models import Movement
from stock.services import StockLine, reservation_create, stock_receive
from stock.tests.helpers import level_of
from stores.models import Role
from tests.factories import MembershipFactory, ProductFactory

from .helpers import ADMIN_HEADER, browser, messages_of, refusal_of, stock_state

EXPORT = "/admin/stock/stocklevel/export/"
IMPORT = "/admin/stock/stocklevel/import/"
HEADER = "store,sku,on_hand,reserved,available,reorder_point,version"


@pytest.fixture
def shelf(level, berlin, tee, mug, hamburg):
    """berlin-01: TEE-RED-M 10 (version 1), MUG-BLUE 6 with 2 held (version 2);
    hamburg-01: MUG-BLUE 3."""
    stock_receive(store=berlin, product=mug, quantity=6)
    reservation_create(store=berlin, lines=[StockLine(mug, 2)])
    stock_receive(store=hamburg, product=mug, quantity=3)


def csv_file(text: str, name: str = "stock.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def upload(client, text, *, name="stock.csv", **fields):
    data = {"store": "berlin-01", "reason": "correction", "note": "", **fields}
    return client.post(IMPORT, {**data, "file": csv_file(text, name)})


def problems_of(response) -> list[str]:
    return response.context["problems"]


# --- Export -------------------------------------------------------------------------


def test_a_manager_downloads_the_stores_stock_as_csv(manager, shelf):
    response = browser(manager).get(EXPORT, {"store": "berlin-01"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="stock-berlin-01-')
    assert disposition.endswith('.csv"')
    assert response.content.decode().splitlines() == [
        HEADER,
        "berlin-01,MUG-BLUE,6,2,4,0,2",
        "berlin-01,TEE-RED-M,10,0,10,0,1",
    ]


def test_staff_download_any_stores_stock(staff, shelf):
    response = browser(staff).get(EXPORT, {"store": "hamburg-01"})

    assert response.content.decode().splitlines() == [HEADER, "hamburg-01,MUG-BLUE,3,0,3,0,1"]


@pytest.mark.parametrize("role", ["clerk", "viewer"])
def test_clerks_and_viewers_may_not_download_it(request, shelf, role):
    response = browser(request.getfixturevalue(role)).get(EXPORT, {"store": "berlin-01"})

    assert response.status_code == 403
    assert ADMIN_HEADER in response.text
    assert refusal_of(response) == "This needs the manager role in store berlin-01."


@pytest.mark.parametrize("code", ["hamburg-01", "nowhere-01"])
def test_a_store_the_manager_does_not_see_is_not_found(manager, shelf, code):
    assert browser(manager).get(EXPORT, {"store": code}).status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(shelf):
    response = Client().get(EXPORT, {"store": "berlin-01"})

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


def test_without_a_store_the_export_page_offers_the_stores_the_user_manages(
    manager, shelf, hamburg, munich
):
    MembershipFactory(user=manager, store=munich, role=Role.MANAGER)
    MembershipFactory(user=manager, store=hamburg, role=Role.VIEWER)

    response = browser(manager).get(EXPORT)

    assert response.status_code == 200
    assert [code for code, _ in response.context["form"].fields["store"].choices] == [
        "",
        "berlin-01",
        "munich-01",
    ]
    assert '<form method="get" id="stock-export-form">' in response.text


def test_a_clerk_is_told_the_export_is_for_managers(clerk, shelf):
    response = browser(clerk).get(EXPORT)

    assert response.status_code == 403
    assert refusal_of(response) == (
        "Exporting or importing a store's stock needs the manager role there; you manage no store."
    )


# Session, user, "is a member of any store", the store with the user's role, the levels
# with their products. The same for 1 level and 100.
EXPORT_QUERIES = 5


@pytest.mark.parametrize("count", [1, 100])
def test_the_export_takes_the_same_queries_for_1_and_100_levels(
    django_assert_num_queries, manager, berlin, count
):
    for number in range(count):
        stock_receive(store=berlin, product=ProductFactory(sku=f"BULK-{number:03d}"), quantity=1)
    client = browser(manager)

    with django_assert_num_queries(EXPORT_QUERIES):
        response = client.get(EXPORT, {"store": "berlin-01"})

    assert len(response.content.decode().splitlines()) == count + 1


# --- Upload -------------------------------------------------------------------------


def test_the_upload_form_has_a_file_input_and_the_store_chosen(manager, shelf):
    response = browser(manager).get(IMPORT, {"store": "berlin-01"})

    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in response.text
    assert '<input type="file" name="file"' in response.text
    assert response.context["form"]["store"].value() == "berlin-01"


def test_an_exported_file_with_changed_counts_is_applied(manager, shelf, berlin, tee, mug):
    client = browser(manager)
    exported = client.get(EXPORT, {"store": "berlin-01"}).content.decode()
    changed = exported.replace("berlin-01,TEE-RED-M,10,", "berlin-01,TEE-RED-M,7,")

    response = upload(client, changed, name="berlin.csv", note="weekly count", reason="lost")

    assert (response.status_code, response["Location"]) == (
        302,
        "/admin/stock/stocklevel/?store=berlin-01",
    )
    after = level_of(berlin, tee)
    assert (after.on_hand, after.version) == (7, 2)
    assert level_of(berlin, mug).on_hand == 6
    movement = Movement.objects.order_by("-id").first()
    assert (movement.kind, movement.delta_on_hand, movement.reason, movement.actor) == (
        "set",
        -3,
        "lost",
        manager,
    )
    assert movement.reference == "upload berlin.csv: weekly count"
    listed = client.get(response["Location"])
    assert messages_of(listed) == [
        ("success", "Imported berlin.csv into berlin-01: 1 row applied, 1 unchanged (counts).")
    ]
    assert [(level.product.sku, level.on_hand) for level in listed.context["cl"].result_list] == [
        ("TEE-RED-M", 7),
        ("MUG-BLUE", 6),
    ]


def test_a_file_of_adjustments_is_applied_with_its_reason(manager, shelf, berlin, tee, mug):
    client = browser(manager)

    response = upload(
        client,
        "store,sku,delta\nberlin-01,TEE-RED-M,-2\nberlin-01,MUG-BLUE,-1\n",
        reason="damaged",
    )

    assert response.status_code == 302
    assert (level_of(berlin, tee).on_hand, level_of(berlin, mug).on_hand) == (8, 5)
    assert messages_of(client.get(response["Location"])) == [
        ("success", "Imported stock.csv into berlin-01: 2 rows applied (adjustments).")
    ]
    assert list(
        Movement.objects.filter(kind="adjust").order_by("id").values_list("reason", "reference")
    ) == [("damaged", "upload stock.csv"), ("damaged", "upload stock.csv")]


def test_a_note_the_movements_reference_cannot_hold_is_refused(manager, shelf, berlin, tee):
    """The note follows "upload stock.csv: " in the reference, 255 characters in all: it
    is refused whole rather than cut."""
    client = browser(manager)
    text = "store,sku,on_hand\nberlin-01,TEE-RED-M,7\n"
    before = stock_state()

    refused = upload(client, text, note="n" * 238)
    unchanged = stock_state()
    applied = upload(client, text, note="n" * 237)

    assert refused.status_code == 409
    assert problems_of(refused) == [
        "The note is kept on every movement's reference after the file's name: it may "
        "have 237 characters here, not 238."
    ]
    assert unchanged == before
    assert applied.status_code == 302
    assert Movement.objects.order_by("-id").first().reference == "upload stock.csv: " + "n" * 237


def test_every_bad_line_is_named_and_nothing_is_applied(manager, shelf):
    before = stock_state()

    response = upload(
        browser(manager),
        "store,sku,on_hand\nberlin-01,TEE-RED-M,5\nberlin-01,NOPE,1\nberlin-01,MUG-BLUE,-1\n",
    )

    assert response.status_code == 400
    assert problems_of(response) == [
        "line 3: unknown SKU 'NOPE'.",
        "line 4: on_hand -1 is negative.",
    ]
    assert '<ul class="errorlist" id="import-problems">' in response.text
    assert "line 3: unknown SKU &#x27;NOPE&#x27;." in response.text
    assert stock_state() == before


def test_a_line_of_another_store_is_refused(manager, shelf, hamburg):
    MembershipFactory(user=manager, store=hamburg, role=Role.MANAGER)
    before = stock_state()

    response = upload(
        browser(manager), "store,sku,on_hand\nberlin-01,TEE-RED-M,5\nhamburg-01,MUG-BLUE,1\n"
    )

    assert response.status_code == 400
    assert problems_of(response) == [
        "line 3: the store is hamburg-01, but this upload is for berlin-01."
    ]
    assert stock_state() == before


def test_a_line_of_a_store_says_nothing_of_whether_it_exists(manager, shelf, hamburg):
    """hamburg-01 exists but the manager does not see it; nowhere-01 does not exist."""
    response = upload(
        browser(manager),
        "store,sku,on_hand\nhamburg-01,TEE-RED-M,5\nnowhere-01,TEE-RED-M,1\n",
    )

    assert response.status_code == 400
    assert problems_of(response) == [
        "line 2: the store is hamburg-01, but this upload is for berlin-01.",
        "line 3: the store is nowhere-01, but this upload is for berlin-01.",
    ]


def test_a_null_character_in_a_line_is_a_problem_of_that_line(manager, shelf):
    before = stock_state()

    response = upload(browser(manager), "store,sku,on_hand\nberlin-01,TEE\x00RED,5\n")

    assert response.status_code == 400
    assert problems_of(response) == ["line 2: a null character."]
    assert stock_state() == before


def test_rows_the_services_refuse_undo_the_whole_file(manager, shelf):
    before = stock_state()

    response = upload(
        browser(manager),
        "store,sku,delta\nberlin-01,TEE-RED-M,-1\nberlin-01,MUG-BLUE,-5\n",
        reason="damaged",
    )

    assert response.status_code == 409
    assert problems_of(response) == [
        "line 3: Not enough stock (MUG-BLUE: 5 requested, 4 available)."
    ]
    assert stock_state() == before


def test_an_adjustment_whose_sign_does_not_fit_its_reason_is_refused(manager, shelf):
    before = stock_state()

    response = upload(
        browser(manager), "store,sku,delta\nberlin-01,TEE-RED-M,3\n", reason="damaged"
    )

    assert response.status_code == 409
    [problem] = problems_of(response)
    assert problem.startswith("line 2: ")
    assert stock_state() == before


def test_a_row_whose_level_changed_since_the_export_is_refused_unless_forced(
    manager, shelf, berlin, tee
):
    client = browser(manager)
    exported = client.get(EXPORT, {"store": "berlin-01"}).content.decode()
    stock_receive(store=berlin, product=tee, quantity=1)  # version 2 now
    changed = exported.replace("berlin-01,TEE-RED-M,10,", "berlin-01,TEE-RED-M,7,")
    before = stock_state()

    refused = upload(client, changed)
    forced = upload(client, changed, force="on")

    assert refused.status_code == 409
    assert problems_of(refused) == [
        "line 3: berlin-01 TEE-RED-M has changed since the file was exported "
        "(version 1 in the file, 2 now)."
    ]
    assert forced.status_code == 302
    assert level_of(berlin, tee).on_hand == 7
    assert stock_state()[1] == before[1] + 1


@pytest.mark.parametrize(
    "content, error",
    [
        (b"\xff\xfe not utf-8", "The file is not UTF-8 text (invalid start byte at byte 0)."),
        (b"", "The submitted file is empty."),
    ],
)
def test_a_file_that_is_not_text_is_a_form_error(manager, shelf, content, error):
    before = stock_state()

    response = browser(manager).post(
        IMPORT,
        {
            "store": "berlin-01",
            "reason": "correction",
            "file": SimpleUploadedFile("x.csv", content),
        },
    )

    assert response.status_code == 400
    assert response.context["form"].errors == {"file": [error]}
    assert stock_state() == before


def test_a_file_over_the_limit_is_a_form_error(manager, shelf, monkeypatch):
    from stock import forms

    monkeypatch.setattr(forms, "MAX_UPLOAD_BYTES", 20)
    before = stock_state()

    response = upload(browser(manager), "store,sku,on_hand\nberlin-01,TEE-RED-M,5\n")

    assert response.status_code == 400
    assert response.context["form"].errors == {
        "file": ["The file is larger than the limit of 20 bytes."]
    }
    assert stock_state() == before


@pytest.mark.parametrize("role", ["clerk", "viewer"])
def test_clerks_and_viewers_may_not_upload(request, shelf, role):
    before = stock_state()

    response = upload(
        browser(request.getfixturevalue(role)), "store,sku,on_hand\nberlin-01,TEE-RED-M,5\n"
    )

    assert response.status_code == 403
    assert ADMIN_HEADER in response.text
    assert stock_state() == before


def test_a_manager_may_not_upload_for_a_store_they_do_not_manage(manager, shelf, hamburg):
    MembershipFactory(user=manager, store=hamburg, role=Role.CLERK)
    before = stock_state()

    response = upload(
        browser(manager), "store,sku,on_hand\nhamburg-01,MUG-BLUE,1\n", store="hamburg-01"
    )

    assert response.status_code == 400
    assert response.context["form"].errors == {
        "store": ["Select a valid choice. That choice is not one of the available choices."]
    }
    assert stock_state() == before


# --- Reaching them ------------------------------------------------------------------


def test_the_stock_list_offers_a_manager_export_and_import_of_the_filtered_store(manager, shelf):
    response = browser(manager).get("/admin/stock/stocklevel/", {"store": "berlin-01"})

    assert '<a href="/admin/stock/stocklevel/export/?store=berlin-01">Export CSV</a>' in (
        response.text
    )
    assert '<a href="/admin/stock/stocklevel/import/?store=berlin-01">Import CSV</a>' in (
        response.text
    )


def test_unfiltered_the_buttons_lead_to_the_store_choice(manager, shelf):
    response = browser(manager).get("/admin/stock/stocklevel/")

    assert '<a href="/admin/stock/stocklevel/export/">Export CSV</a>' in response.text
    assert '<a href="/admin/stock/stocklevel/import/">Import CSV</a>' in response.text


@pytest.mark.parametrize("role", ["clerk", "viewer"])
def test_clerks_and_viewers_are_not_offered_csv_files(request, shelf, role):
    response = browser(request.getfixturevalue(role)).get("/admin/stock/stocklevel/")

    assert "Export CSV" not in response.text
    assert "Import CSV" not in response.text


def test_the_low_stock_page_offers_the_stores_csv_files(manager, shelf):
    response = browser(manager).get("/stores/berlin-01/low-stock/")

    assert '<a href="/admin/stock/stocklevel/export/?store=berlin-01">Export CSV</a>' in (
        response.text
    )
    assert '<a href="/admin/stock/stocklevel/import/?store=berlin-01">Import CSV</a>' in (
        response.text
    )
