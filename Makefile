# One command per task; the README uses the same words.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# `import mlflow` reports usage to an outside host unless this is set; set it to false to allow.
export MLFLOW_DISABLE_TELEMETRY ?= true

.PHONY: venv test lint format demo clean generate-images train models

venv: $(INSTALLED)

$(INSTALLED): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

test: lint ## the whole suite (cluster and PostgreSQL tests skip unless REQUIRE_K8S / REQUIRE_POSTGRES)
	$(BIN)/pytest

lint: venv ## ruff (lint and format) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: venv ## rewrite the code in the house format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Local training loop (embedded defaults: state in ./.artpulse). Override on the command line,
# e.g. `make generate-images PER_LABEL=50 SEED=3` or `make train DATA_DIR=/path/to/images`.
DATA_DIR ?= .artpulse/images
PER_LABEL ?= 120
SIZE ?= 256
SEED ?= 0

demo: venv ## the local loop: generate images, train, register, show versions (and later steps)
	$(BIN)/artpulse demo

generate-images: venv ## draw PER_LABEL images of each style into DATA_DIR
	$(BIN)/artpulse generate-images --output $(DATA_DIR) --per-label $(PER_LABEL) --size $(SIZE) --seed $(SEED)

train: venv ## train the candidates on DATA_DIR and register the best model
	$(BIN)/artpulse train --dataset-dir $(DATA_DIR) --seed $(SEED)

models: venv ## list the registered versions with aliases and metrics
	$(BIN)/artpulse models

# Serving: `make serve` in one terminal, then `make predict` or `make predict-image IMAGE=x.png`.
.PHONY: serve predict predict-image
FEATURES ?= 0.30,0.45,0.60,0.25,0.10
IMAGE ?=

serve: venv ## serve the champion over V2 REST (8080) and gRPC (8081), metrics on 8082
	$(BIN)/artpulse serve

predict: venv ## classify one feature row (FEATURES=a,b,c,d,e) with the running server
	$(BIN)/artpulse predict --features $(FEATURES)

predict-image: venv ## classify an image file (IMAGE=path) with the running server
	@test -n "$(IMAGE)" || { echo "usage: make predict-image IMAGE=path/to/image.png" >&2; exit 2; }
	$(BIN)/artpulse predict --image $(IMAGE)

# Operator: `make operator` runs it on NAMESPACE of the cluster in KUBECONFIG;
# `make operator-check` starts a throwaway local API server (../shared/k8s), runs the operator
# tests and bench/operator.py on it, and stops it.
.PHONY: operator operator-check
NAMESPACE ?= default
SHARED_DIR ?= ../shared
K8S_RUN ?= .k8s-run

operator: venv ## run the operator on NAMESPACE (applies manifests/crd.yaml first)
	$(BIN)/kubectl apply -f manifests/crd.yaml
	$(BIN)/artpulse operator --namespace $(NAMESPACE) --liveness-port 0

operator-check: venv ## operator tests and bench/operator.py on a throwaway local API server
	env=$$($(SHARED_DIR)/k8s/local-cluster start $(K8S_RUN)) && eval "$$env" && \
	  REQUIRE_K8S=1 $(BIN)/pytest tests/test_operator_*.py && $(BIN)/python bench/operator.py; \
	  rc=$$?; $(SHARED_DIR)/k8s/local-cluster stop $(K8S_RUN); exit $$rc

# Monitoring and rollout: `make drift`, then `make retrain`, `make promote`, `make rollback`.
# Extra options go in ARGS, e.g. `make drift ARGS="--last 5000"` or `make promote ARGS="--version 3"`.
.PHONY: drift retrain promote rollback
ARGS ?=
REASON ?= manual rollback

drift: venv ## check the champion's last 24 h of events for drift (exit 3 when it finds drift)
	$(BIN)/artpulse drift $(ARGS)

retrain: venv ## run the drift check; on drift retrain on the champion's training folder (a challenger)
	$(BIN)/artpulse retrain $(ARGS)

promote: venv ## make the challenger champion if it passes the gate
	$(BIN)/artpulse promote $(ARGS)

rollback: venv ## point champion back at previous-champion (REASON="why")
	$(BIN)/artpulse rollback --reason "$(REASON)"

clean: ## remove the local state folder (registry, artifacts, events)
	rm -rf .artpulse

# Images and the end-to-end run on a real node. `make images` builds both images with the
# legacy builder under the names the dev overlay pins (IfNotPresent then uses them on a local
# node, or after `kind load docker-image`) and prints their sizes; DOCKER_BUILD_ARGS passes
# more, e.g. "--build-arg PIP_INDEX_URL=https://mirror/simple". `make e2e` builds them, starts
# ../shared/k8s/local-node, applies the dev overlay and drives the lifecycle on pods (root,
# Docker; ARTPULSE_E2E=skip skips it on a laptop without them).
.PHONY: images e2e
IMAGE_REPOSITORY ?= ghcr.io/artpulse
IMAGE_TAG ?= 0.1.0
DOCKER_BUILD_ARGS ?=

images: ## build the runtime and jobs images (legacy builder) and print their sizes
	@for image in runtime jobs; do \
	  echo "building $(IMAGE_REPOSITORY)/artpulse-$$image:$(IMAGE_TAG)"; \
	  DOCKER_BUILDKIT=0 docker build $(DOCKER_BUILD_ARGS) -f Dockerfile.$$image \
	    -t $(IMAGE_REPOSITORY)/artpulse-$$image:$(IMAGE_TAG) . || exit 1; \
	done
	@for image in runtime jobs; do \
	  docker image inspect -f "{{.Size}} $(IMAGE_REPOSITORY)/artpulse-$$image:$(IMAGE_TAG)" \
	    $(IMAGE_REPOSITORY)/artpulse-$$image:$(IMAGE_TAG) \
	    | awk '{ printf "%-45s %6.0f MB\n", $$2, $$1 / 1e6 }'; \
	done

e2e: venv ## build the images, run the whole lifecycle on a local node (needs root and Docker)
	$(BIN)/pytest -m e2e tests/e2e
