"""The test project's URLs plus the hostile page, for tests/test_hostile_inputs.py.

Used with ``override_settings(ROOT_URLCONF="tests.hostile_urls")``, so tests/urls.py
stays as it is. Under ``/panel/``, where the toolbar shows.
"""

from django.urls import path

from tests.testapp import hostile_views
from tests.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("panel/hostile/", hostile_views.hostile_page, name="panel_hostile"),
    *project_urlpatterns,
]
