# The README's two commands, and a few more.
.PHONY: start test lint migrations-check

start:            ## run the product: web + worker on the embedded defaults
	bin/dev start

test:             ## run every test (sets up the virtualenv, packages and browser)
	bin/dev test

lint:
	.venv/bin/ruff check .

migrations-check:
	.venv/bin/python manage.py makemigrations --check --dry-run
