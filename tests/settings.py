"""The tests' settings: the project's, after the local defaults are made (the tests are an entry
point, and pytest-django reads the settings before any conftest runs)."""

from memoryweb import bootstrap

bootstrap.prepare()

from memoryweb.settings import *  # noqa: E402, F403
