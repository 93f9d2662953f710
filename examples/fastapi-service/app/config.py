"""Runtime configuration, read from the environment (never from files baked into the image)."""

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every field maps to an environment variable of the same name, upper-cased."""

    # Docker/Compose secrets are files named after the field in /run/secrets.
    model_config = SettingsConfigDict(env_file=None, secrets_dir="/run/secrets", extra="ignore")

    database_url: str = "postgresql://app@localhost:5432/app"
    database_password: SecretStr = SecretStr("")
    api_key: SecretStr = SecretStr("")
    log_level: str = "INFO"


settings = Settings()
