"""What the server loads: ``gunicorn wsgi:app``."""

from inventory import create_app

app = create_app()
