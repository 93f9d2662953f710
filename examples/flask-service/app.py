"""Inventory API: a health route and one read endpoint."""

import os

from flask import Flask, abort, jsonify

app = Flask(__name__)
app.config["SECRET_KEY"] = os.environ.get("FLASK_SECRET_KEY", "")
REDIS_URL = os.getenv("REDIS_URL", "redis://localhost:6379/0")
STOCK = {"coffee": 12, "tea": 4}


@app.get("/healthz")
def healthz():
    """The process is up and can answer."""
    return jsonify(status="ok")


@app.get("/stock/<item>")
def stock(item: str):
    """Units in stock for one item."""
    if item not in STOCK:
        abort(404)
    return jsonify(item=item, units=STOCK[item])


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.getenv("PORT", "5000")))
