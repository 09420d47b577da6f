"""Serverless OCR: one cached ONNX OCR engine per process, bounded memory, clear errors.

Modules, in the order a request meets them:
    settings  - every environment variable, read and validated once
    logs      - Cloud Logging JSON on the platform, readable text locally
    startup   - bad settings in one line, the "ready" line, exit when the engine cannot load
    errors    - exceptions that carry their own HTTP status and machine-readable code
    http      - request body -> image bytes, errors -> HTTP responses, one log entry each
    storage   - Cloud Storage event -> bounded download -> OCR -> result object, retry or not
    backfill  - a Cloud Run job's task: its share of a bucket's objects, each through storage
    service   - the process's settings, cached engine, and the admission gate in front of it
    deadline  - REQUEST_TIMEOUT_SECONDS per request: 504 instead of holding the engine
    shutdown  - SIGTERM: every request answered within the platform's 10 s grace
    images    - decode, bomb checks, EXIF orientation, colour modes, resize before the model
    engine    - the one RapidOCR engine, loaded in the serving process, called one at a time
    pipeline  - decode -> OCR -> result schema, with timings and memory
    memory    - resident memory now and at peak, the instance limit, alert levels
    cgroups   - where the platform's memory and CPU limits for this process are written
"""

__version__ = "0.1.0"
