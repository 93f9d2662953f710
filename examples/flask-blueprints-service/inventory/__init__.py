"""The app factory: blueprints are registered under their URL prefixes."""

import os

from flask import Flask


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["DATABASE_URL"] = os.environ.get("DATABASE_URL", "")

    from inventory.api import bp as api_bp

    app.register_blueprint(api_bp, url_prefix="/api")

    @app.cli.command("init-db")
    def init_db() -> None:
        """Create the schema (the Procfile's release step)."""
        from inventory.store import connect

        if app.config["DATABASE_URL"]:
            with connect(app.config["DATABASE_URL"]) as conn:
                conn.cursor().execute("CREATE TABLE IF NOT EXISTS stock (item text PRIMARY KEY, count int)")

    return app
