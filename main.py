"""Entry points only. Everything else lives in the `function` package.

functions-framework --target=ocr                                   # HTTP: POST an image
functions-framework --target=ocr_storage --signature-type=cloudevent  # Cloud Storage trigger
"""

import functions_framework
from cloudevents.http import CloudEvent

from function import http, logs, shutdown, startup
from function.service import Service

settings = startup.settings_or_exit()
logs.configure(settings)
service = Service(settings)
startup.load_engine(service)
shutdown.watch()  # SIGTERM caps every request's deadline: answered before SIGKILL


@functions_framework.http
def ocr(request):
    """OCR the posted image; GET returns service info (a readiness probe), or to a browser
    the page to try it."""
    return http.handle(request, service)


@functions_framework.cloud_event
def ocr_storage(event: CloudEvent) -> None:
    """OCR the object a Cloud Storage `finalized` event names into a result object."""
    from function import storage  # google-cloud-storage costs ~30 MB RSS: load it only here

    storage.handle(event, service)
