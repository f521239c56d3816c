#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryweb.settings")
    from django.core.management import execute_from_command_line

    from memoryweb import bootstrap

    bootstrap.prepare()
    try:
        execute_from_command_line(sys.argv)
    finally:
        bootstrap.finish()


if __name__ == "__main__":
    main()
