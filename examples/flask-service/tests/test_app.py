from app import app


def test_healthz() -> None:
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_unknown_item_is_404() -> None:
    assert app.test_client().get("/stock/water").status_code == 404
