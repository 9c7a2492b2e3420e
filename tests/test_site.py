import pytest


def test_healthz_answers_without_touching_the_database(client):
    """No django_db mark: pytest-django makes any database access here an error."""
    response = client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_healthz_is_read_only(client):
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_the_admin_login_page_carries_the_site_name(client):
    response = client.get("/admin/login/")

    assert response.status_code == 200
    assert "<title>Log in | Inventory</title>" in response.text
    assert '<div id="site-name"><a href="/admin/">Inventory</a></div>' in response.text
