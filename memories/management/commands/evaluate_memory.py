"""`manage.py evaluate_memory`: the memory benchmark (see bench/README.md)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

from memories.evaluation import locomo
from memories.evaluation.baselines import BASELINES
from memories.evaluation.report import format_report
from memories.evaluation.run import Options, evaluate


class Command(BaseCommand):
    help = (
        "Benchmark memory retrieval on a LoCoMo-format data set: ingest each conversation as a new user through "
        "the memory pipeline, then score recall@k of the evidence turns in build_context's sources "
        "against BM25/dense/RRF baselines. Offline: rules extraction and local embeddings."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", choices=["locomo"], default="locomo")
        parser.add_argument("--input", required=True, type=Path, help="LoCoMo-format JSON file.")
        parser.add_argument(
            "--k", nargs="+", type=int, default=[5, 10, 20], help="Cut-offs for recall@k."
        )
        parser.add_argument("--json", type=Path, help="Write the report as JSON to this file.")
        parser.add_argument("--baseline", nargs="+", action="extend", choices=BASELINES, default=[])
        parser.add_argument(
            "--budget-tokens", type=int, default=4000, help="build_context's token budget."
        )
        parser.add_argument(
            "--asked-at",
            choices=["end", "now"],
            default="end",
            help="When the questions are asked (build_context's now): at the conversation's last turn (default) "
            "or at the current time.",
        )
        parser.add_argument(
            "--keep-users", action="store_true", help="Keep the users (and data) it creates."
        )
        parser.add_argument(
            "--reuse-users",
            action="store_true",
            help="Ask the questions of the users an earlier --keep-users run left (the newest holding each "
            "conversation's turns) instead of ingesting again; conversations without one are ingested. Keeps users.",
        )
        parser.add_argument(
            "--limit-conversations", type=int, help="Only the first N conversations."
        )

    def handle(self, *args, **options):
        path: Path = options["input"]
        if not path.is_file():
            raise CommandError(
                f"No data set at {path} (give a LoCoMo-format JSON file with --input)."
            )
        if any(k < 1 for k in options["k"]) or options["budget_tokens"] < 1:
            raise CommandError("--k and --budget-tokens must be positive.")
        try:
            samples = locomo.load(path)
        except locomo.DatasetError as exc:
            raise CommandError(str(exc)) from exc
        migrated()
        if options["limit_conversations"] is not None:
            samples = samples[: max(0, options["limit_conversations"])]
        run_options = Options(
            ks=sorted(set(options["k"])),
            budget_tokens=options["budget_tokens"],
            baselines=list(dict.fromkeys(options["baseline"])),
            keep_users=options["keep_users"],
            reuse_users=options["reuse_users"],
            asked_at=options["asked_at"],
        )
        # The product's offline path, whatever the environment configures: rules extraction, local
        # MiniLM.
        with (
            override_settings(OPENAI_API_KEY="", EMBEDDING_BACKEND="local"),
            _quiet("memories.services"),
        ):
            report = evaluate(path, samples, run_options, log=self.stderr.write)
        self.stdout.write(format_report(report, run_options.ks))
        if options["json"]:
            options["json"].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
            self.stderr.write(f"Report written to {options['json']}")


def migrated() -> None:
    """The benchmarks' data folder (often a new one, `.data/bench`) has the project's tables."""
    call_command("migrate", interactive=False, verbosity=0)


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Without the pipeline's one INFO line per processed message (thousands of them); warnings
    still show."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)
