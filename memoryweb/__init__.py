from memoryweb.celery import app as celery_app

# The release, as erasure receipts name it: bump it with each release.
__version__ = "2026.12.0"

__all__ = ("__version__", "celery_app")
