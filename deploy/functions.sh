#!/usr/bin/env bash
# Deploy both functions to Cloud Run functions (gen2) with gcloud, from the repository root.
#
#   PROJECT=my-project deploy/functions.sh deploy      # APIs, buckets, accounts, IAM, functions
#   PROJECT=my-project deploy/functions.sh url         # the HTTP function's URL
#   PROJECT=my-project deploy/functions.sh revisions ocr          # a function's revisions
#   PROJECT=my-project deploy/functions.sh rollback ocr REVISION  # all traffic to that revision
#
# Everything below can be overridden from the environment. Re-running `deploy` is safe: what
# exists is kept, and each function gets a new revision. Neither function is public: the HTTP
# one needs an identity token of a principal with roles/run.invoker, the storage one is invoked
# only by its Eventarc trigger's service account.
set -euo pipefail
cd "$(dirname "$0")/.."

PROJECT="${PROJECT:?set PROJECT to your Google Cloud project id}"
REGION="${REGION:-europe-west1}"
RUNTIME="${RUNTIME:-python311}" # the version the tests run; rapidocr-onnxruntime stops at 3.12
HTTP_FUNCTION="${HTTP_FUNCTION:-ocr}"
STORAGE_FUNCTION="${STORAGE_FUNCTION:-ocr-storage}"
INPUT_BUCKET="${INPUT_BUCKET:-$PROJECT-ocr-input}"    # uploads here are OCR'd
OUTPUT_BUCKET="${OUTPUT_BUCKET:-$PROJECT-ocr-results}" # results go here, under OUTPUT_PREFIX
OUTPUT_PREFIX="${OUTPUT_PREFIX:-ocr-results/}"
# Instance size. Memory: the function's measured peak (README "Deploy") plus headroom; CPU: 1,
# because the platform allows more than one request per instance only from 1 vCPU up.
MEMORY="${MEMORY:-1Gi}"
CPU="${CPU:-1}"
MAX_INSTANCES="${MAX_INSTANCES:-10}" # the cost ceiling: at most this many instances at once
HTTP_TIMEOUT="${HTTP_TIMEOUT:-120s}"
STORAGE_TIMEOUT="${STORAGE_TIMEOUT:-300s}"
ENV_FILE=deploy/env.yaml
# The platform's per-instance concurrency is the function's own admission limit.
CONCURRENCY="$(sed -n 's/^MAX_CONCURRENT_REQUESTS: *"\([0-9]*\)".*/\1/p' "$ENV_FILE")"
RUNTIME_SA="ocr-runtime@$PROJECT.iam.gserviceaccount.com"
TRIGGER_SA="ocr-trigger@$PROJECT.iam.gserviceaccount.com"

service_account() { # NAME DESCRIPTION: create the account unless it exists
  gcloud iam service-accounts describe "$1@$PROJECT.iam.gserviceaccount.com" \
    --project="$PROJECT" >/dev/null 2>&1 ||
    gcloud iam service-accounts create "$1" --display-name="$2" --project="$PROJECT"
}

bucket() { # NAME: create the bucket in REGION unless it exists
  gcloud storage buckets describe "gs://$1" --project="$PROJECT" >/dev/null 2>&1 ||
    gcloud storage buckets create "gs://$1" --location="$REGION" \
      --uniform-bucket-level-access --project="$PROJECT"
}

deploy() {
  gcloud services enable artifactregistry.googleapis.com cloudbuild.googleapis.com \
    cloudfunctions.googleapis.com eventarc.googleapis.com iam.googleapis.com \
    logging.googleapis.com pubsub.googleapis.com run.googleapis.com storage.googleapis.com \
    --project="$PROJECT"

  service_account ocr-runtime "OCR functions at run time"
  service_account ocr-trigger "Eventarc trigger of the OCR storage function"
  bucket "$INPUT_BUCKET"
  bucket "$OUTPUT_BUCKET"

  # The functions read uploads and write (and replace) results; nothing else.
  gcloud storage buckets add-iam-policy-binding "gs://$INPUT_BUCKET" \
    --member="serviceAccount:$RUNTIME_SA" --role=roles/storage.objectViewer
  gcloud storage buckets add-iam-policy-binding "gs://$OUTPUT_BUCKET" \
    --member="serviceAccount:$RUNTIME_SA" --role=roles/storage.objectUser
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

  # gcloud takes one env file: the shared one plus where results go.
  storage_env="$(mktemp)"
  trap 'rm -f "$storage_env"' EXIT
  cat "$ENV_FILE" >"$storage_env"
  printf 'OUTPUT_BUCKET: "%s"\nOUTPUT_PREFIX: "%s"\n' "$OUTPUT_BUCKET" "$OUTPUT_PREFIX" \
    >>"$storage_env"
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
