"""``manage.py signaltrace graph``: print the signal map (who listens, who sends).

Modelled on django-extensions' ``graph_models``: filters by glob, several output
formats, ``--output`` to write a file::

    manage.py signaltrace graph                       # text, every receiver
    manage.py signaltrace graph --format mermaid --exclude "django.*"
    manage.py signaltrace graph --from-trace trace.json --format dot -o signals.dot
    manage.py signaltrace graph --deletes auth.User   # receivers a delete runs, cascades included

``--from-trace`` adds the edges a recorded run observed (``trace.to_dict()``
saved as JSON), so a save loop appears as a cycle, listed under "Cycles".
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from signaltrace.graph import FORMATS, build_map, load_trace, render, render_deletes


class Command(BaseCommand):
    help = "signaltrace tools. 'graph' prints every connected receiver per signal and sender."

    def add_arguments(self, parser: CommandParser) -> None:
        subcommands = parser.add_subparsers(dest="subcommand", metavar="subcommand")
        subcommands.required = True
        graph = subcommands.add_parser(
            "graph",
            help="Print the signal map: receivers per signal and sender, plus edges from a trace.",
            description="Print the signal map: receivers per signal and sender, plus edges from a trace.",
        )
        graph.add_argument("--format", "-f", choices=FORMATS, default="text", help="Output format (text).")
        graph.add_argument(
            "--from-trace",
            metavar="FILE",
            help="A saved trace (trace.to_dict() as JSON): add the observed calls and sends.",
        )
        graph.add_argument("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout.")
        graph.add_argument(
            "--signal", "-s", action="append", metavar="GLOB", help="Only signals matching (repeatable)."
        )
        graph.add_argument(
            "--include", "-I", action="append", metavar="GLOB", help="Only receivers matching (repeatable)."
        )
        graph.add_argument(
            "--exclude",
            "-X",
            action="append",
            metavar="GLOB",
            help="Leave out receivers matching, e.g. 'django.*'.",
        )

        graph.add_argument(
            "--deletes",
            "-d",
            action="append",
            metavar="MODEL",
            help="Draw the delete path of app_label.Model instead (repeatable): its delete receivers "
            "and those of every model a CASCADE reaches. Formats text, json, mermaid.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options.get("deletes"):
            try:
                self._write(render_deletes(options["deletes"], options["format"]), options)
            except (LookupError, ValueError) as exc:
                raise CommandError(str(exc)) from exc
            return
        trace = None
        if options.get("from_trace"):
            try:
                trace = load_trace(options["from_trace"])
            except (OSError, ValueError) as exc:
                raise CommandError(f"Cannot read the trace: {exc}") from exc
        signal_map = build_map(trace, options.get("signal"), options.get("include"), options.get("exclude"))
        if signal_map.unmatched_signals:
            patterns = ", ".join(repr(pattern) for pattern in signal_map.unmatched_signals)
            raise CommandError(
                f"No signal matches --signal {patterns}. Signals are named as the map prints them "
                "(post_save, shop.signals.order_paid; globs like '*.order_paid' work): run "
                "'signaltrace graph' without --signal to list them."
            )
        self._write(render(signal_map, options["format"], options.get("from_trace")), options)

    def _write(self, output: str, options: dict[str, Any]) -> None:
        if options.get("output"):
            with open(options["output"], "w", encoding="utf-8") as file:
                file.write(output)
        else:
            self.stdout.write(output, ending="" if output.endswith("\n") else "\n")
