from inventory import create_app


def test_stock_is_under_the_api_prefix() -> None:
    client = create_app().test_client()
    assert client.get("/api/stock/apples").get_json() == {"item": "apples", "count": 3}
