"""Loop lab pages. Every scenario runs inside ``signaltrace.record()``; the toolbar shows the rest."""

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import render
from django.views.decorators.http import require_POST

import signaltrace
from looplab.scenarios import ASYNC_SCENARIO, BY_SLUG, RUNNERS, SCENARIOS, run_scenario
from looplab.signals import photo_uploaded
from looplab.tracing import summarize


def index(request: HttpRequest) -> HttpResponse:
    return render(request, "looplab/index.html", {"scenarios": SCENARIOS, "async_scenario": ASYNC_SCENARIO})


@require_POST
def run(request: HttpRequest, slug: str) -> HttpResponse:
    if slug not in RUNNERS:
        raise Http404("No such scenario")
    outcome, error, trace = run_scenario(slug)
    context = {"scenario": BY_SLUG[slug], "outcome": outcome, "error": error, "trace": summarize(trace)}
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
