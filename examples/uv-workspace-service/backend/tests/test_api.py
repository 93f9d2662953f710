from api.main import app
from fastapi.testclient import TestClient


def test_health_check_is_under_the_api_prefix() -> None:
    client = TestClient(app)
    assert client.get("/api/v1/utils/health-check/").json() is True
    assert client.get("/api/v1/notes/1").json()["text"] == "first note"
