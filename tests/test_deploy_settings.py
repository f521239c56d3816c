"""HTTPS settings: off on localhost (so `make start` works over http), on by default for a site
served beyond it, each from the environment; and `manage.py check --deploy` is clean for a
production environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

PRODUCTION = {
    "DEBUG": "0",
    "ALLOWED_HOSTS": "memory.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://memory.example.com",
    "SECRET_KEY": "k" * 10 + "9fV2qzX!p@4LrT8wNc#Yh6Jm$Ud3Bs&Ea1Gi^Ko7Zl*Qx0Rv5Ws",
    "MEMORYWEB_MASTER_KEYS": "prod-1:" + "A" * 43 + "=",
    "MEMORYWEB_FINGERPRINT_KEY": "prod-fp:" + "B" * 43 + "=",
    "RECEIPT_SIGNING_KEY": "C" * 43 + "=",
    "SECURE_HSTS_PRELOAD": "1",
}
SHOWN = (
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
)


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "memoryweb.settings", **env}
    return subprocess.run(
        [sys.executable, *args], cwd=settings.BASE_DIR, env=environment,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def _values(**env: str) -> dict:
    code = "import json, django; django.setup(); from django.conf import settings as s; "
    code += f"print(json.dumps({{k: getattr(s, k) for k in {SHOWN!r}}}))"
    result = _run(["-c", code], **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_on_localhost_https_is_not_forced():
    assert not settings.SECURE_SSL_REDIRECT and settings.SECURE_HSTS_SECONDS == 0
    assert not settings.SESSION_COOKIE_SECURE


def test_a_public_site_gets_https_by_default():
    values = _values(**PRODUCTION)
    assert values == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
    }


def test_each_can_be_set_from_the_environment():
    values = _values(**PRODUCTION, SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="60")
    assert values["SECURE_SSL_REDIRECT"] is False and values["SECURE_HSTS_SECONDS"] == 60


def test_a_malformed_proxy_header_is_refused():
    result = _run(["-c", "import django; django.setup()"], SECURE_PROXY_SSL_HEADER="https")
    assert result.returncode != 0 and "SECURE_PROXY_SSL_HEADER must be" in result.stderr


@pytest.mark.skipif(
    not settings.EMBEDDED_DATABASE, reason="runs manage.py on the embedded database"
)
def test_check_deploy_is_clean_for_a_production_environment():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
