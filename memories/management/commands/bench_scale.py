"""`manage.py bench_scale`: the context among many LoCoMo-sized users (see bench/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

from memories.evaluation import locomo
from memories.evaluation.scale import Options, format_report, run_scale
from memories.management.commands.evaluate_memory import _quiet, migrated

DEFAULT_INPUT = Path(settings.BASE_DIR).parent / "shared" / "data" / "locomo" / "locomo_dev.json"


class Command(BaseCommand):
    help = (
        "Seed N users with LoCoMo-sized histories (the LoCoMo conversations ingested once through "
        "the pipeline, then cloned in bulk under each user's own key), then measure build_context "
        "in process against the query embedding alone, POST /api/v1/context through gunicorn with "
        "1 and 8 clients, the plans of the context's searches and short vector searches. The "
        "seeded users are deleted at the end unless --keep. Offline: rules extraction, local "
        "embeddings."
    )

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, required=True, help="How many users to seed.")
        parser.add_argument(
            "--conversations",
            type=int,
            help="Only the first K LoCoMo conversations as templates (default: all).",
        )
        parser.add_argument(
            "--input", type=Path, default=DEFAULT_INPUT, help="LoCoMo-format JSON file."
        )
        parser.add_argument("--json", type=Path, help="Write the report as JSON to this file.")
        parser.add_argument("--keep", action="store_true", help="Keep the users it made.")
        parser.add_argument(
            "--reuse",
            action="store_true",
            help="Measure the templates and seeded users an earlier --keep run left (seeding only "
            "those missing up to --users) instead of ingesting and seeding again. Keeps users.",
        )
        parser.add_argument(
            "--questions", type=int, default=200, help="In-process context builds timed."
        )
        parser.add_argument(
            "--limit-checks",
            type=int,
            default=30,
            help="Contexts whose vector searches are checked against exact ones.",
        )
        parser.add_argument(
            "--budget-tokens", type=int, help="build_context's budget (default: the product's)."
        )
        parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
        parser.add_argument(
            "--seconds", type=float, default=15.0, help="Load per count of clients and round."
        )
        parser.add_argument("--rounds", type=int, default=3, help="Rounds of the load, in turns.")
        parser.add_argument("--warmup", type=float, default=5.0, help="Seconds of load unmeasured.")
        parser.add_argument(
            "--http-users", type=int, default=100, help="Users given an API key for the load."
        )
        parser.add_argument(
            "--url",
            help="Load a server already running at this URL on the same database instead of "
            "starting gunicorn.",
        )
        parser.add_argument("--seed", type=int, default=12, help="Of the random question mix.")

    def handle(self, *args, **options):
        path: Path = options["input"]
        if not path.is_file():
            raise CommandError(
                f"No data set at {path}: give a LoCoMo-format JSON file with --input (the LoCoMo "
                "dev set is not in the repository)."
            )
        positive = ("users", "questions", "http_users", "rounds")
        if any(options[name] < 1 for name in positive) or options["seconds"] <= 0:
            raise CommandError("--users, --questions, --http-users, --rounds, --seconds: > 0.")
        if any(c < 1 for c in options["clients"]) or options["limit_checks"] < 0:
            raise CommandError("--clients must be positive, --limit-checks not negative.")
        try:
            samples = locomo.load(path)
        except locomo.DatasetError as exc:
            raise CommandError(str(exc)) from exc
        migrated()
        samples = [s for s in samples[: options["conversations"]] if s.turns]
        if not samples:
            raise CommandError(f"{path} holds no conversation with turns.")
        run_options = Options(
            users=options["users"],
            questions=options["questions"],
            limit_checks=options["limit_checks"],
            budget_tokens=options["budget_tokens"],
            clients=sorted(set(options["clients"])),
            seconds=options["seconds"],
            rounds=options["rounds"],
            warmup=options["warmup"],
            http_users=options["http_users"],
            url=options["url"],
            keep=options["keep"],
            reuse=options["reuse"],
            seed=options["seed"],
        )
        # The product's offline path, whatever the environment configures; without the pipeline's
        # line per message.
        with (
            override_settings(OPENAI_API_KEY="", EMBEDDING_BACKEND="local"),
            _quiet("memories.services"),
            _quiet("memories.pipeline"),
        ):
            try:
                report = run_scale(samples, run_options, log=self.stderr.write)
            except ValueError as exc:  # nothing kept to reuse
                raise CommandError(str(exc)) from exc
        report["dataset"] = str(path)
        self.stdout.write(format_report(report))
        if options["json"]:
            options["json"].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
            self.stderr.write(f"Report written to {options['json']}")
