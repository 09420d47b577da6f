# shellcheck shell=bash
# What deploy/functions.sh and deploy/backfill-job.sh share, sourced by both: the project, where
# scans and results live, the instance size, the environment, and idempotent set-up helpers.
# Every value can be overridden from the environment. deploy/terraform/variables.tf has the same
# defaults (tests/test_deploy_static.py checks that they agree).

PROJECT="${PROJECT:?set PROJECT to your Google Cloud project id}"
REGION="${REGION:-europe-west1}"
INPUT_BUCKET="${INPUT_BUCKET:-$PROJECT-ocr-input}"    # uploads here are OCR'd
OUTPUT_BUCKET="${OUTPUT_BUCKET:-$PROJECT-ocr-results}" # results go here, under OUTPUT_PREFIX
OUTPUT_PREFIX="${OUTPUT_PREFIX:-ocr-results/}"
# Instance size, for the functions and the job's tasks alike. Memory: the instance peaks at
# ~290 MiB (gunicorn's master ~51 + the worker's high-water mark ~240 on the largest pages;
# docs/deploy.md), so 512 MiB, with room for requests waiting their turn. CPU: 1, because the
# platform sends an instance more than one request at a time only from 1 vCPU up.
MEMORY="${MEMORY:-512Mi}"
CPU="${CPU:-1}"
ENV_FILE=deploy/env.yaml # the functions' and the job's environment (gcloud and Terraform read it)

enable_apis() { # idempotent; the build needs Cloud Build and Artifact Registry as well
  gcloud services enable artifactregistry.googleapis.com cloudbuild.googleapis.com \
    cloudfunctions.googleapis.com eventarc.googleapis.com iam.googleapis.com \
    logging.googleapis.com pubsub.googleapis.com run.googleapis.com storage.googleapis.com \
    --project="$PROJECT"
}

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

grant() { # BUCKET ACCOUNT ROLE: a role on one bucket only
  gcloud storage buckets add-iam-policy-binding "gs://$1" \
    --member="serviceAccount:$2@$PROJECT.iam.gserviceaccount.com" --role="$3" >/dev/null
}

results_env_file() { # a temporary env file: ENV_FILE plus where results go (gcloud takes one)
  local file
  file="$(mktemp)"
  cat "$ENV_FILE" >"$file"
  printf 'OUTPUT_BUCKET: "%s"\nOUTPUT_PREFIX: "%s"\n' "$OUTPUT_BUCKET" "$OUTPUT_PREFIX" >>"$file"
  echo "$file"
}
