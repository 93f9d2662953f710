"""Settings read from the environment."""

import os


class Settings:
    API_PREFIX: str = "/api/v1"
    title: str = os.environ.get("NOTES_TITLE", "notes")


settings = Settings()
