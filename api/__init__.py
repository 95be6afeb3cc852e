"""The HTTP front door: FastAPI app, auth dependencies, one router per resource, console."""
