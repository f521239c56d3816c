"""The start the scripts share that measure the users a `manage.py bench_scale --keep` run left in
the data folder: the LoCoMo file checked, the project's database started, the kept users found."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryweb.settings")

from memoryweb import bootstrap  # noqa: E402

DEV_SET = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "locomo" / "locomo_dev.json"
)


def main(
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace], None],
    positive: Sequence[str] = (),
) -> None:
    """Parse `parser`'s arguments (an `--input` is added; those named in `positive` must be 1 or
    more), then `run` them with Django set up on the embedded database (started if need be, stopped
    after)."""
    parser.add_argument("--input", type=Path, default=DEV_SET, help="LoCoMo-format JSON file.")
    args = parser.parse_args()
    if not args.input.is_file():
        sys.exit(f"No LoCoMo data set at {args.input}: give one with --input.")
    for name in positive:
        value = getattr(args, name)
        if any(v < 1 for v in (value if isinstance(value, list) else [value])):
            sys.exit(f"--{name} must be positive.")
    bootstrap.prepare()
    import django

    django.setup()
    try:
        run(args)
    finally:
        bootstrap.finish()


def kept(args: argparse.Namespace, count: int):
    """The samples of `args.input`, their kept templates and up to `count` kept seeded users; exits
    saying how to make them when there are none."""
    from memories.evaluation import locomo, scale

    samples = locomo.load(args.input)
    try:
        templates, seeded = scale.kept_users(samples, count)
    except ValueError as exc:
        sys.exit(f"{exc} (manage.py bench_scale --users 10 --keep makes them)")
    if not seeded:
        sys.exit("No seeded user kept: run manage.py bench_scale --users 10 --keep first.")
    return samples, templates, seeded
