from flask import Blueprint

bp = Blueprint("api", __name__)

from inventory.api import routes  # noqa: E402,F401  (routes register on bp)
