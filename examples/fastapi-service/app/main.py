"""A tiny orders API: enough surface to containerize and deploy."""

import logging
import os

from fastapi import FastAPI, Header, HTTPException
from prometheus_client import make_asgi_app

from app.config import settings

logging.basicConfig(level=settings.log_level)
log = logging.getLogger("orders")

app = FastAPI(title="orders", version=os.getenv("APP_VERSION", "0.1.0"))
# Prometheus scrapes the process metrics here (monitoring/prometheus.yml).
app.mount("/metrics", make_asgi_app())

_ORDERS: dict[int, dict[str, object]] = {1: {"id": 1, "item": "coffee", "quantity": 2}}


@app.get("/health")
def health() -> dict[str, str]:
    """Liveness and readiness: the process is up and serving."""
    return {"status": "ok"}


@app.get("/orders/{order_id}")
def get_order(order_id: int, x_api_key: str = Header(default="")) -> dict[str, object]:
    """Return one order; the caller must present the API key."""
    if x_api_key != settings.api_key.get_secret_value():
        raise HTTPException(status_code=401, detail="invalid api key")
    order = _ORDERS.get(order_id)
    if order is None:
        raise HTTPException(status_code=404, detail="order not found")
    return order
