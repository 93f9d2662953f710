"""Stock levels."""

from flask import current_app

from inventory.api import bp
from inventory.store import stock_of


@bp.get("/stock/<item>")
def stock(item: str) -> dict[str, object]:
    return {"item": item, "count": stock_of(current_app.config["DATABASE_URL"], item)}
