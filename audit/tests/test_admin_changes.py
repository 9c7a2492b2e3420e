"""Changes made in the admin are recorded once, in the transaction that makes them.

- "Delete selected" records each deleted object in the deletion's own transaction: if
  recording fails, nothing is deleted (and nothing recorded).
- A stock level's reorder point, edited on its admin page, is one ``stock.reorder_point``
  event (the stock service's, with the old and new point, as over the API), not that
  plus the admin's ``admin.change``.
"""

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client

from accounts.models import User
from audit import admin as audit_admin
from audit.models import AuditOutboxEntry
from audit.tests.test_recording import (
    USER_ADMIN_PERMISSIONS,
    AuditLog,
    admin_client,
    delete_selected_users,
    over_http,
)
from stock.models import StockLevel
from stock.services import stock_receive
from stores.models import Role
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, UserFactory


class RecordingFailed(Exception):
    pass


def test_deleting_several_users_records_them_in_the_deletions_transaction(db, monkeypatch):
    """The second event cannot be written: the deletion is undone with the first."""
    client, _ = admin_client(*USER_ADMIN_PERMISSIONS)
    doomed = [UserFactory(username="leaver-1"), UserFactory(username="leaver-2")]
    log_entries, outbox = LogEntry.objects.count(), AuditOutboxEntry.objects.count()
    record = audit_admin.audit_log_entry
    recorded = []

    def record_the_first_only(entry):
        if recorded:
            raise RecordingFailed("the audit outbox is out of reach")
        recorded.append(entry.object_repr)
        record(entry)

    monkeypatch.setattr(audit_admin, "audit_log_entry", record_the_first_only)

    with pytest.raises(RecordingFailed):
        delete_selected_users(client, doomed)

    assert len(recorded) == 1
    assert sorted(
        User.objects.filter(username__startswith="leaver").values_list("username", flat=True)
    ) == ["leaver-1", "leaver-2"]
    assert LogEntry.objects.count() == log_entries
    assert AuditOutboxEntry.objects.count() == outbox


@pytest.fixture
def level(db):
    """TEE in berlin-01: 10 on hand, reorder point 0; and its manager."""
    store, product = StoreFactory(code="berlin-01"), ProductFactory(sku="TEE")
    stock_receive(store=store, product=product, quantity=10)
    manager = UserFactory(username="berlin-manager")
    MembershipFactory(user=manager, store=store, role=Role.MANAGER)
    return StockLevel.objects.get(store=store, product=product), manager


def post_reorder_point(manager, level, value):
    client = Client()
    client.force_login(manager)
    return client.post(
        f"/admin/stock/stocklevel/{level.pk}/change/",
        {"reorder_point": str(value), "_save": "Save"},
    )


def test_a_reorder_point_edited_in_the_admin_is_one_event(level):
    level, manager = level
    log = AuditLog()

    response = post_reorder_point(manager, level, 7)

    assert (response.status_code, response["Location"]) == (302, "/admin/stock/stocklevel/")
    assert StockLevel.objects.get(pk=level.pk).reorder_point == 7
    assert log.described() == [
        {
            "action": "stock.reorder_point",
            **over_http(response, manager),
            "store_id": level.store_id,
            "object_type": "stock.stocklevel",
            "object_id": str(level.pk),
            "object_repr": "TEE @ berlin-01",
            "before": {"reorder_point": 0},
            "after": {"reorder_point": 7},
        }
    ]
    # The level's admin history still shows the change.
    assert list(
        LogEntry.objects.filter(object_id=str(level.pk)).values_list("change_message", flat=True)
    ) == ['[{"changed": {"fields": ["Reorder point"]}}]']


def test_saving_a_level_page_without_a_change_records_nothing(level):
    level, manager = level
    log = AuditLog()

    response = post_reorder_point(manager, level, 0)

    assert response.status_code == 302
    assert StockLevel.objects.get(pk=level.pk).reorder_point == 0
    assert log.events() == []
