"""The audit log in the admin shows each user what the API shows them: the same events,
and the address only where they may see it (no column nor field for viewers and clerks)."""

import re

import pytest
from django.contrib.admin.templatetags.admin_list import result_headers
from django.test import Client

from audit.models import AuditEvent

URL = "/admin/audit/auditevent/"
READERS = [
    "viewer",
    "clerk",
    "manager",
    "manager_and_clerk",
    "staff_with_stock_view",
    "staff_with_stock_change",
    "staff_with_view_permissions",
    "staff_with_audit_view",
    "superuser",
]


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("audit_reader", READERS, indirect=True)
def test_the_list_shows_each_reader_the_events_the_api_shows_them(store_audit_log, audit_reader):
    response = browser(audit_reader.user).get(URL)

    assert response.status_code == 200
    changelist = response.context["cl"]
    assert [event.sequence for event in changelist.result_list] == [
        sequence for sequence, _ in audit_reader.sees
    ]
    shows_addresses = any(shown for _, shown in audit_reader.sees)
    assert ("ip_address" in changelist.list_display) is shows_addresses
    for sequence, shown in audit_reader.sees:
        assert (f">203.0.113.{sequence}</td>" in response.text) is shown


@pytest.mark.parametrize("audit_reader", READERS, indirect=True)
def test_an_events_page_shows_the_address_only_to_whom_may_see_it(store_audit_log, audit_reader):
    client = browser(audit_reader.user)

    for sequence, shown in audit_reader.sees:
        event = AuditEvent.objects.get(sequence=sequence)
        response = client.get(f"{URL}{event.pk}/change/")

        assert response.status_code == 200
        assert f"event {sequence}" in response.text
        assert (f"203.0.113.{sequence}" in response.text) is shown
        assert ("IP address" in response.text) is shown


@pytest.mark.parametrize("audit_reader", ["viewer", "clerk"], indirect=True)
def test_viewers_and_clerks_do_not_find_the_other_events_of_their_store(
    store_audit_log, audit_reader
):
    client = browser(audit_reader.user)
    grant = AuditEvent.objects.get(action="membership.grant")

    listed = client.get(URL, {"action": "membership.grant"})
    opened = client.get(f"{URL}{grant.pk}/change/", follow=True)

    assert list(listed.context["cl"].result_list) == []
    assert opened.redirect_chain == [("/admin/", 302)]
    assert "203.0.113.3" not in opened.text


@pytest.mark.parametrize("audit_reader", ["staff_without_permissions"], indirect=True)
def test_staff_without_permissions_may_not_open_the_audit_log(store_audit_log, audit_reader):
    client = browser(audit_reader.user)
    event = AuditEvent.objects.get(sequence=1)

    assert client.get(URL).status_code == 403
    assert client.get(f"{URL}{event.pk}/change/").status_code == 403


# --- Labels that read like words ------------------------------------------------------


def labels_of(response) -> list[str]:
    """The labels of a read-only admin page's fields, in order."""
    return re.findall(r"<label>([^<]*):</label>", response.text)


def headers_of(response) -> list[str]:
    changelist = response.context["cl"]
    return [str(header["text"]) for header in result_headers(changelist)]


@pytest.mark.parametrize(
    "audit_reader, headers",
    [
        ("manager", ["sequence", "when", "action", "actor", "IP address", "object"]),
        ("viewer", ["sequence", "when", "action", "actor", "object"]),
    ],
    indirect=["audit_reader"],
)
def test_the_lists_columns_are_named_in_words(store_audit_log, audit_reader, headers):
    response = browser(audit_reader.user).get(URL)

    assert headers_of(response) == headers
    assert '<td class="field-when">2025-01-01 10:01:00</td>' in response.text
    assert "Actor username" not in response.text
    assert "Object repr" not in response.text


@pytest.mark.parametrize("audit_reader", ["manager"], indirect=True)
def test_an_events_page_names_its_fields_in_words_and_its_store_by_code(
    store_audit_log, audit_reader
):
    event = AuditEvent.objects.get(sequence=3)

    response = browser(audit_reader.user).get(f"{URL}{event.pk}/change/")

    assert labels_of(response) == [
        "Sequence",
        "When",
        "Action",
        "Store",
        "Actor",
        "IP address",
        "Object type",
        "Object ID",
        "Object",
        "Before",
        "After",
        "Request ID",
        "Recorded at",
        "Hash",
        "Previous hash",
    ]
    assert '<div class="readonly">berlin-01</div>' in response.text
    assert '<div class="readonly">someone</div>' in response.text
