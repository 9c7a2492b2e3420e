"""The stock level list reads at a glance: a low level carries a warning and a healthy
one nothing; members do not see the version, which is bookkeeping for the API."""

import pytest

from .helpers import browser, column, rows

LOW_LABEL = '<span class="low-stock">LOW</span>'


@pytest.mark.parametrize("role", ["manager", "viewer", "staff"])
def test_low_levels_carry_a_low_warning_and_healthy_ones_nothing(request, low_and_high, role):
    response = browser(request.getfixturevalue(role)).get("/admin/stock/stocklevel/")

    assert response.status_code == 200
    assert [level.product.sku for level in rows(response)] == ["TEE-RED-M", "MUG-BLUE", "CAP-GREEN"]
    assert column(response, "low") == [LOW_LABEL, "", LOW_LABEL]
    assert "icon-yes.svg" not in response.text
    assert "icon-no.svg" not in response.text


@pytest.mark.parametrize("role", ["manager", "clerk", "viewer"])
def test_members_are_not_shown_the_version(request, low_and_high, role):
    response = browser(request.getfixturevalue(role)).get("/admin/stock/stocklevel/")

    assert response.status_code == 200
    assert "version" not in response.context["cl"].list_display
    assert column(response, "version") == []


@pytest.mark.parametrize("role", ["staff", "staff_with_view_permissions"])
def test_staff_keep_the_version_column(request, low_and_high, role):
    response = browser(request.getfixturevalue(role)).get("/admin/stock/stocklevel/")

    assert response.status_code == 200
    assert column(response, "version") == ["1", "1", "2"]


def test_the_list_leaves_out_the_navigation_sidebar_to_give_its_columns_room(manager, low_and_high):
    """Measured in headless Chromium at 1,400 px: with the sidebar, the checkboxes of the
    actions and the product's name, the table was wider than its column."""
    response = browser(manager).get("/admin/stock/stocklevel/")

    assert response.context["is_nav_sidebar_enabled"] is False
    assert 'id="nav-sidebar"' not in response.text
