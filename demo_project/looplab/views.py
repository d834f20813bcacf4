"""Loop lab pages. Every scenario runs inside ``signaltrace.record()``; the toolbar shows the rest."""

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import render
from django.views.decorators.http import require_POST

import signaltrace
from looplab.scenarios import ASYNC_SCENARIO, BY_SLUG, HAZARDS, PATTERNS, RUNNERS, SCENARIOS, run_scenario
from looplab.signals import photo_uploaded
from looplab.tracing import summarize


def index(request: HttpRequest) -> HttpResponse:
    context = {
        "scenarios": SCENARIOS,
        "patterns": PATTERNS,
        "hazards": HAZARDS,
        "async_scenario": ASYNC_SCENARIO,
    }
    return render(request, "looplab/index.html", context)


@require_POST
def run(request: HttpRequest, slug: str) -> HttpResponse:
    if slug not in RUNNERS:
        raise Http404("No such scenario")
    outcome, error, trace = run_scenario(slug)
    scenario = BY_SLUG[slug]
    summary = summarize(trace)
    kwargs_rows = [
        row for row in summary["rows"] if scenario.kwargs_of and row["signal"] == scenario.kwargs_of
    ]
    context = {
        "scenario": scenario,
        "twin": BY_SLUG.get(scenario.twin),
        "outcome": outcome,
        "error": error,
        "trace": summary,
        "kwargs_rows": kwargs_rows,
    }
    return render(request, "looplab/result.html", context)


async def photo_upload(request: HttpRequest) -> HttpResponse:
    """Sends photo_uploaded with ``asend`` (Django 5.0+), from an async view.

    The method is checked by hand: ``require_POST`` wraps async views only since Django 5.0.
    """
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not hasattr(photo_uploaded, "asend"):
        outcome = ["This Django has no Signal.asend (added in Django 5.0): nothing was sent."]
        summary = {"rows": [], "loops": [], "max_depth": 0}
    else:
        with signaltrace.record() as trace:
            responses = await photo_uploaded.asend(sender=None, name="cat.jpg")
        outcome = [f"{receiver.__name__} returned {response!r}" for receiver, response in responses]
        summary = summarize(trace)
    context = {"scenario": ASYNC_SCENARIO, "outcome": outcome, "error": "", "trace": summary}
    return render(request, "looplab/result.html", context)
