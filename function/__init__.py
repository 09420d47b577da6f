"""Serverless OCR: one cached ONNX OCR engine per process, bounded memory, clear errors.

Modules, in the order a request meets them:
    settings  - every environment variable, read and validated once
    logs      - Cloud Logging JSON on the platform, readable text locally
    startup   - bad settings in one line, the "ready" line and warm-up, exit if the engine fails
    errors    - exceptions that carry their own HTTP status and machine-readable code
    http      - request body -> image bytes, errors -> HTTP responses, one log entry each
      web/index.html - the page a browser gets at GET /: drop an image, see text and boxes
    storage   - Cloud Storage event -> bounded download -> OCR -> result object, retry or not
      checkpoints - a document's pages saved one by one, what a stopped attempt resumes from
      gcs_client  - one Cloud Storage client per process, the retry and timeout of every call
    backfill/ - a Cloud Run job's task: its share of a bucket's objects, each through storage
      task      - the task's place in the job: which objects and which document pages are its
      progress  - counts, rate and ETA: logged, and drawn as a bar in a terminal
      __main__  - the command line: python -m function.backfill BUCKET ...
    service   - the process's settings, cached engine, and the admission gate in front of it
    deadline  - REQUEST_TIMEOUT_SECONDS per request: 504 instead of holding the engine
    shutdown  - SIGTERM: every request answered within the platform's 10 s grace
    pipeline  - the steps below in order, with timings and memory -> the result schema
    documents - PDFs (PDFium) and multi-page TIFFs, one page at a time; text layers judged
      images      - decode: bomb checks, EXIF orientation, colour modes, shrink, never enlarge
      orientation - a page turned 90/180/270 found and turned upright (AUTO_ROTATE)
      detect      - line quadrilaterals from the detector on bounded strips; one-line images
      recognise   - each line cut out and read alone, with its characters' places
      spacing     - word spaces from the model's odds and the line's pixels (none in CJK)
      layout/     - lines -> blocks in reading order: rules, tables, columns, rows and cells
    engine    - the models (PP-OCRv4, or PP-OCRv6 with OCR_MODEL=v6), loaded once, one image at
                a time
    allocator - glibc's arenas and mmap threshold, set from inside the process
    memory    - resident memory now and at peak, the instance limit, alert levels
    cgroups   - where the platform's memory and CPU limits for this process are written
"""

__version__ = "0.1.0"
