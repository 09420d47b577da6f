#!/usr/bin/env bash
# Deploy the backfill as a Cloud Run job, from source, and optionally run it over a bucket.
#
#   deploy/backfill-job.sh BUCKET [PREFIX]          # deploy (or update) the job
#   EXECUTE=1 deploy/backfill-job.sh BUCKET [PREFIX]  # ... and start an execution, and wait
#
# The job runs `python -m function.backfill BUCKET [--prefix PREFIX]` as TASKS tasks, each on its
# own instance with CLOUD_RUN_TASK_INDEX/COUNT set; every task takes its own share of the
# bucket (a hash of each object's name) and writes the results the Cloud Storage trigger writes.
# Settings (environment, defaults in brackets):
#   PROJECT [gcloud's project]   REGION [europe-west1]   JOB [ocr-backfill]
#   TASKS [10]  PARALLELISM [TASKS]  MAX_RETRIES [3]  TASK_TIMEOUT [86400s: a task's whole share]
#   MEMORY [4Gi]  CPU [2]  OUTPUT_BUCKET [BUCKET]  OUTPUT_PREFIX [ocr-results/]
#   SERVICE_ACCOUNT_NAME [ocr-backfill]: created if missing, granted storage roles on the buckets
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  sed -n '2,15p' "$0" >&2
  exit 2
fi
BUCKET=$1
PREFIX=${2:-}
PROJECT=${PROJECT:-$(gcloud config get-value project 2>/dev/null)}
REGION=${REGION:-europe-west1}
JOB=${JOB:-ocr-backfill}
TASKS=${TASKS:-10}
PARALLELISM=${PARALLELISM:-$TASKS}
MAX_RETRIES=${MAX_RETRIES:-3}
TASK_TIMEOUT=${TASK_TIMEOUT:-86400s}
MEMORY=${MEMORY:-4Gi}
CPU=${CPU:-2}
OUTPUT_BUCKET=${OUTPUT_BUCKET:-$BUCKET}
OUTPUT_PREFIX=${OUTPUT_PREFIX:-ocr-results/}
SERVICE_ACCOUNT_NAME=${SERVICE_ACCOUNT_NAME:-ocr-backfill}
SERVICE_ACCOUNT="${SERVICE_ACCOUNT_NAME}@${PROJECT}.iam.gserviceaccount.com"

if [[ -z "$PROJECT" ]]; then
  echo "No project: set PROJECT or run 'gcloud config set project ...'" >&2
  exit 2
fi
cd "$(dirname "$0")/.."

# The tasks' identity: list and read the source bucket; read, create and replace results
# (replacing an object needs delete as well as create, hence objectUser on the output bucket).
if ! gcloud iam service-accounts describe "$SERVICE_ACCOUNT" --project "$PROJECT" >/dev/null 2>&1; then
  gcloud iam service-accounts create "$SERVICE_ACCOUNT_NAME" --project "$PROJECT" \
    --display-name "OCR backfill (Cloud Run job)"
fi
if [[ "$OUTPUT_BUCKET" != "$BUCKET" ]]; then
  gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" \
    --member "serviceAccount:$SERVICE_ACCOUNT" --role roles/storage.objectViewer >/dev/null
fi
gcloud storage buckets add-iam-policy-binding "gs://$OUTPUT_BUCKET" \
  --member "serviceAccount:$SERVICE_ACCOUNT" --role roles/storage.objectUser >/dev/null

# Built by Google Cloud's buildpacks (Python from .python-version). The command goes through the
# buildpacks' launcher, which puts the built Python and its packages on the path.
ARGS="python,-m,function.backfill,$BUCKET"
if [[ -n "$PREFIX" ]]; then
  ARGS="$ARGS,--prefix=$PREFIX"
fi
gcloud run jobs deploy "$JOB" \
  --project "$PROJECT" \
  --region "$REGION" \
  --source . \
  --ignore-file deploy/backfill.gcloudignore \
  --command /cnb/lifecycle/launcher \
  --args "$ARGS" \
  --tasks "$TASKS" \
  --parallelism "$PARALLELISM" \
  --max-retries "$MAX_RETRIES" \
  --task-timeout "$TASK_TIMEOUT" \
  --memory "$MEMORY" \
  --cpu "$CPU" \
  --service-account "$SERVICE_ACCOUNT" \
  --set-env-vars "OUTPUT_BUCKET=$OUTPUT_BUCKET,OUTPUT_PREFIX=$OUTPUT_PREFIX,LOG_LEVEL=WARNING"

if [[ "${EXECUTE:-0}" == 1 ]]; then
  gcloud run jobs execute "$JOB" --project "$PROJECT" --region "$REGION" --wait
fi
