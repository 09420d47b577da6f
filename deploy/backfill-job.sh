#!/usr/bin/env bash
# The backfill (docs/backfill.md) as a Cloud Run job, with gcloud, from the repository root:
#
#   PROJECT=my-project deploy/backfill-job.sh deploy          # build from source, deploy the job
#   PROJECT=my-project deploy/backfill-job.sh run [OPTION...]  # run it over the bucket and wait
#
# Every task runs `python -m function.backfill BACKFILL_BUCKET [--prefix=BACKFILL_PREFIX]` with
# CLOUD_RUN_TASK_INDEX/COUNT set, takes its share of the bucket and writes exactly the results
# the storage function writes (same OUTPUT_BUCKET, OUTPUT_PREFIX, environment and instance size:
# deploy/common.sh). `run`'s OPTIONs replace the prefix for that execution: --prefix=P,
# --since=TIME, --limit=N, --dry-run (no commas: gcloud splits --args on them).
# Settings (environment; the shared ones are in deploy/common.sh):
#   BACKFILL_BUCKET [INPUT_BUCKET]  BACKFILL_PREFIX [none]  JOB [ocr-backfill]  TASKS [10]
#   PARALLELISM [TASKS]  MAX_RETRIES [3]  TASK_TIMEOUT [86400s: one attempt at a task's share]
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=deploy/common.sh
. deploy/common.sh # PROJECT, REGION, buckets, MEMORY, CPU, ENV_FILE, set-up helpers
BACKFILL_BUCKET="${BACKFILL_BUCKET:-$INPUT_BUCKET}"
BACKFILL_PREFIX="${BACKFILL_PREFIX:-}"
JOB="${JOB:-ocr-backfill}"
TASKS="${TASKS:-10}"
PARALLELISM="${PARALLELISM:-$TASKS}"
MAX_RETRIES="${MAX_RETRIES:-3}"
TASK_TIMEOUT="${TASK_TIMEOUT:-86400s}"

# The container's command is the buildpacks' launcher, which puts the built Python and its
# packages on the path; after `--` it runs the command directly, with no shell re-evaluating the
# bucket name or prefix. (The image's default process is a web server the job does not use.)
backfill_args() { # [OPTION...]: the container arguments, comma-separated as gcloud takes them
  local IFS=,
  echo "--,python,-m,function.backfill,$BACKFILL_BUCKET${*:+,$*}"
}

deploy() {
  enable_apis
  service_account ocr-backfill "OCR backfill (Cloud Run job)"
  bucket "$OUTPUT_BUCKET"
  # The tasks list and read the scans and read, create and replace results (objectUser: replacing
  # needs delete as well as create). objectUser includes reading, so one bucket needs one role.
  if [[ "$BACKFILL_BUCKET" != "$OUTPUT_BUCKET" ]]; then
    grant "$BACKFILL_BUCKET" ocr-backfill roles/storage.objectViewer
  fi
  grant "$OUTPUT_BUCKET" ocr-backfill roles/storage.objectUser

  local prefix=()
  if [[ -n "$BACKFILL_PREFIX" ]]; then prefix=("--prefix=$BACKFILL_PREFIX"); fi
  env_file="$(results_env_file)"
  trap 'rm -f "$env_file"' EXIT
  # From source: gcloud uploads what the root .gcloudignore lets through (main.py, function/,
  # requirements.txt, the OpenCV stand-in it names, .python-version), the same files as the
  # functions'; `gcloud run jobs deploy` has no other ignore file. Cloud Build builds it with
  # Google Cloud's buildpacks: Python from .python-version (3.11; the buildpacks' default would
  # be newer than rapidocr-onnxruntime supports), packages from requirements.txt.
  gcloud run jobs deploy "$JOB" --project="$PROJECT" --region="$REGION" --source=. \
    --command=/cnb/lifecycle/launcher --args="$(backfill_args "${prefix[@]}")" \
    --tasks="$TASKS" --parallelism="$PARALLELISM" --max-retries="$MAX_RETRIES" \
    --task-timeout="$TASK_TIMEOUT" --memory="$MEMORY" --cpu="$CPU" \
    --service-account="ocr-backfill@$PROJECT.iam.gserviceaccount.com" \
    --env-vars-file="$env_file"
}

run() { # [OPTION...]: execute the job and wait for every task
  gcloud run jobs execute "$JOB" --project="$PROJECT" --region="$REGION" --wait \
    ${1:+"--args=$(backfill_args "$@")"}
}

case "${1:-}" in
deploy) deploy ;;
run) run "${@:2}" ;;
*)
  echo "usage: PROJECT=... $0 deploy | run [--prefix=P] [--since=TIME] [--limit=N] [--dry-run]" >&2
  exit 2
  ;;
esac
