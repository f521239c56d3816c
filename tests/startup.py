"""Loaded before anything else (`-p tests.startup` in pyproject.toml): the tests are an entry point,
so they make the local defaults (keys, the embedded PostgreSQL) before pytest-django reads the
settings."""

from memoryweb import bootstrap

bootstrap.prepare()
