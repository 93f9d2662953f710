"""The app object; every API route sits under settings.API_PREFIX."""

from fastapi import APIRouter, FastAPI

from api.config import settings
from api.routes import notes, utils

api_router = APIRouter()
api_router.include_router(utils.router)
api_router.include_router(notes.router)

app = FastAPI(title=settings.title)
app.include_router(api_router, prefix=settings.API_PREFIX)
