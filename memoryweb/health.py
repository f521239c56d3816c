"""Health endpoints for a load balancer or a supervisor: `/healthz` (the process answers) and
`/readyz` (it can do its work: the database, the broker and a live worker), with
django-health-check's checks and views (docs/operations.md#health-endpoints)."""

from __future__ import annotations

import dataclasses
import datetime

import celery
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from health_check.base import HealthCheck
from health_check.checks import Database as DatabaseCheck
from health_check.contrib.celery import Ping
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView

from memoryweb.celery import app as celery_app


@never_cache
def alive(request) -> HttpResponse:
    """The process answers; nothing else is asked (no database), so a restart is only called for
    when the process itself is stuck."""
    return HttpResponse("ok\n", content_type="text/plain; charset=utf-8")


# Each check's repr is its name in the output: what failed, and nothing of the settings behind it.


@dataclasses.dataclass(repr=False)
class Database(DatabaseCheck):
    def __repr__(self) -> str:
        return "database"


@dataclasses.dataclass(repr=False)
class Broker(HealthCheck):
    """The broker takes a connection (Redis, or the filesystem transport's folders)."""

    timeout = datetime.timedelta(seconds=3)

    def run(self) -> None:
        try:
            with celery_app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except Exception as error:  # its message may hold the broker's URL, with a password
            raise ServiceUnavailable("the broker does not answer") from error

    def __repr__(self) -> str:
        return "broker"


@dataclasses.dataclass(repr=False)
class Worker(Ping):
    """A Celery worker answers a ping through the broker now, and consumes the task queue: its
    heartbeat, asked for rather than remembered."""

    app: celery.Celery = dataclasses.field(default_factory=lambda: celery_app)
    timeout: datetime.timedelta = datetime.timedelta(seconds=2)
    limit: int | None = 1  # the first worker to answer will do

    def __repr__(self) -> str:
        return "worker"


class Readiness(HealthCheckView):
    """Every check in one answer, JSON or plain text by the Accept header (or ?format=json|text);
    503 when one fails, as a load balancer expects of a node to take out of rotation."""

    checks = (Database, Broker, Worker)

    async def get(self, request, *args, **kwargs):
        response = await super().get(request, *args, **kwargs)
        if response.status_code == 500:  # the package's "unhealthy"
            response.status_code = 503
        return response

    def render_to_response(self, context, **response_kwargs):
        """JSON where the package would render its HTML page: a probe sends `Accept: */*`."""
        return self.render_to_response_json(response_kwargs.get("status", 200))
