from app.main import app
from fastapi.testclient import TestClient


def test_health_is_ok() -> None:
    client = TestClient(app)
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
