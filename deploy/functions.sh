#!/usr/bin/env bash
# Deploy both functions to Cloud Run functions (gen2) with gcloud, from the repository root.
#
#   PROJECT=my-project deploy/functions.sh deploy      # APIs, buckets, accounts, IAM, functions
#   PROJECT=my-project deploy/functions.sh url         # the HTTP function's URL
#   PROJECT=my-project deploy/functions.sh revisions ocr          # a function's revisions
#   PROJECT=my-project deploy/functions.sh rollback ocr REVISION  # all traffic to that revision
#
# Every setting here and in deploy/common.sh can be overridden from the environment. Re-running
# `deploy` is safe: what exists is kept, and each function gets a new revision. Neither function
# is public: the HTTP one needs an identity token of a principal with roles/run.invoker, the
# storage one is invoked only by its Eventarc trigger's service account. The backfill job over
# what the input bucket already holds is deploy/backfill-job.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=deploy/common.sh
. deploy/common.sh # PROJECT, REGION, buckets, MEMORY, CPU, ENV_FILE, set-up helpers
RUNTIME="${RUNTIME:-python311}" # the version the tests run; rapidocr-onnxruntime stops at 3.12
HTTP_FUNCTION="${HTTP_FUNCTION:-ocr}"
STORAGE_FUNCTION="${STORAGE_FUNCTION:-ocr-storage}"
MAX_INSTANCES="${MAX_INSTANCES:-10}" # the cost ceiling: at most this many instances at once
HTTP_TIMEOUT="${HTTP_TIMEOUT:-120s}"
STORAGE_TIMEOUT="${STORAGE_TIMEOUT:-300s}"
# The platform's per-instance concurrency is the function's own admission limit.
CONCURRENCY="$(sed -n 's/^MAX_CONCURRENT_REQUESTS: *"\([0-9]*\)".*/\1/p' "$ENV_FILE")"
RUNTIME_SA="ocr-runtime@$PROJECT.iam.gserviceaccount.com"
TRIGGER_SA="ocr-trigger@$PROJECT.iam.gserviceaccount.com"

deploy() {
  enable_apis
  service_account ocr-runtime "OCR functions at run time"
  service_account ocr-trigger "Eventarc trigger of the OCR storage function"
  bucket "$INPUT_BUCKET"
  bucket "$OUTPUT_BUCKET"

  # The functions read uploads and write (and replace) results; nothing else.
  grant "$INPUT_BUCKET" ocr-runtime roles/storage.objectViewer
  grant "$OUTPUT_BUCKET" ocr-runtime roles/storage.objectUser
  # Cloud Storage publishes its events through Pub/Sub as its own service agent.
  storage_agent="$(gcloud storage service-agent --project="$PROJECT")"
  gcloud projects add-iam-policy-binding "$PROJECT" --condition=None \
    --member="serviceAccount:$storage_agent" --role=roles/pubsub.publisher
  # The trigger's account receives the events (and, below, invokes the storage function).
  gcloud projects add-iam-policy-binding "$PROJECT" --condition=None \
    --member="serviceAccount:$TRIGGER_SA" --role=roles/eventarc.eventReceiver

  gcloud functions deploy "$HTTP_FUNCTION" --gen2 --project="$PROJECT" --region="$REGION" \
    --runtime="$RUNTIME" --source=. --entry-point=ocr --trigger-http \
    --no-allow-unauthenticated --run-service-account="$RUNTIME_SA" \
    --memory="$MEMORY" --cpu="$CPU" --concurrency="$CONCURRENCY" \
    --max-instances="$MAX_INSTANCES" --timeout="$HTTP_TIMEOUT" --env-vars-file="$ENV_FILE"

  storage_env="$(results_env_file)"
  trap 'rm -f "$storage_env"' EXIT
  # An event's own deadline, 30 s inside the platform's: a long document stops between pages,
  # its pages checkpointed, and the retried event resumes there (docs/documents.md).
  printf 'REQUEST_TIMEOUT_SECONDS: "%s"\n' "$((${STORAGE_TIMEOUT%s} - 30))" >>"$storage_env"
  gcloud functions deploy "$STORAGE_FUNCTION" --gen2 --project="$PROJECT" --region="$REGION" \
    --runtime="$RUNTIME" --source=. --entry-point=ocr_storage \
    --trigger-event-filters="type=google.cloud.storage.object.v1.finalized" \
    --trigger-event-filters="bucket=$INPUT_BUCKET" --trigger-location="$REGION" \
    --trigger-service-account="$TRIGGER_SA" --retry \
    --no-allow-unauthenticated --ingress-settings=internal-only \
    --run-service-account="$RUNTIME_SA" \
    --memory="$MEMORY" --cpu="$CPU" --concurrency="$CONCURRENCY" \
    --max-instances="$MAX_INSTANCES" --timeout="$STORAGE_TIMEOUT" --env-vars-file="$storage_env"
  gcloud functions add-invoker-policy-binding "$STORAGE_FUNCTION" --project="$PROJECT" \
    --region="$REGION" --member="serviceAccount:$TRIGGER_SA"

  url
}

url() {
  gcloud functions describe "$HTTP_FUNCTION" --project="$PROJECT" --region="$REGION" \
    --format="value(serviceConfig.uri)"
}

revisions() { # FUNCTION: a gen2 function is a Cloud Run service of the same name
  gcloud run revisions list --service="$1" --project="$PROJECT" --region="$REGION"
}

rollback() { # FUNCTION REVISION: send all traffic back to an earlier revision
  gcloud run services update-traffic "$1" --to-revisions="$2=100" \
    --project="$PROJECT" --region="$REGION"
}

case "${1:-}" in
deploy) deploy ;;
url) url ;;
revisions) revisions "${2:?which function}" ;;
rollback) rollback "${2:?which function}" "${3:?which revision}" ;;
*)
  echo "usage: PROJECT=... $0 deploy | url | revisions FUNCTION | rollback FUNCTION REVISION" >&2
  exit 2
  ;;
esac
