# Container image, compose and Kubernetes targets. Included by the top-level Makefile;
# also usable alone from the repository root: make -f deploy/deploy.mk <target>.
#
# Every target first checks the tools it needs; when one is missing it prints one line
# saying what, and exits non-zero before doing anything.

PY ?= .venv/bin/python
IMAGE ?= ticket-cart
TAG ?= dev
OVERLAY ?= example

COMPOSE_FILE := deploy/compose.yaml
COMPOSE_ENV := deploy/.env
OVERLAY_DIR = deploy/k8s/overlays/$(OVERLAY)
# The overlay's namespace (kubectl's current one when the overlay sets none).
NAMESPACE = $(shell sed -n 's/^namespace:[[:space:]]*//p' $(OVERLAY_DIR)/kustomization.yaml 2>/dev/null)
KUBECTL_NS = $(if $(NAMESPACE),--namespace $(NAMESPACE))

# One line and a non-zero exit: $(call fail,target,message).
fail = { echo "$(1): $(2)" >&2; exit 1; }

define need_docker_engine
command -v docker >/dev/null 2>&1 || $(call fail,$(1),the docker CLI is not installed); \
docker info >/dev/null 2>&1 || $(call fail,$(1),no Docker engine is reachable ('docker info' fails): start one or set DOCKER_HOST)
endef

define need_docker_compose
$(call need_docker_engine,$(1)); \
docker compose version >/dev/null 2>&1 || $(call fail,$(1),the Docker Compose plugin is missing ('docker compose version' fails))
endef

define need_overlay
test -f $(OVERLAY_DIR)/kustomization.yaml || $(call fail,$(1),no overlay '$(OVERLAY)': $(OVERLAY_DIR)/kustomization.yaml does not exist)
endef

.PHONY: image compose-up compose-down k8s-render deploy lock

image: ## build the production image (IMAGE=ticket-cart TAG=dev) from deploy/Dockerfile
	@$(call need_docker_engine,image); \
	docker build -f deploy/Dockerfile -t $(IMAGE):$(TAG) .

compose-up: ## build and start API, worker, Redis, PostgreSQL (migrations first); wait until healthy
	@$(call need_docker_compose,compose-up); \
	test -f $(COMPOSE_ENV) || $(call fail,compose-up,$(COMPOSE_ENV) is missing: copy deploy/.env.example to it and set the secrets); \
	TICKET_CART_TAG=$(TAG) docker compose -f $(COMPOSE_FILE) --env-file $(COMPOSE_ENV) up --build --detach --wait

compose-down: ## stop and remove the compose services (the PostgreSQL volume is kept)
	@$(call need_docker_compose,compose-down); \
	env_file=$(COMPOSE_ENV); test -f $$env_file || env_file=deploy/.env.example; \
	docker compose -f $(COMPOSE_FILE) --env-file $$env_file down

k8s-render: ## print the manifests of OVERLAY=example as kubectl apply -k would send them
	@$(call need_overlay,k8s-render); \
	if command -v kubectl >/dev/null 2>&1; then kubectl kustomize $(OVERLAY_DIR); \
	elif command -v kustomize >/dev/null 2>&1; then kustomize build $(OVERLAY_DIR); \
	else $(call fail,k8s-render,neither kubectl nor kustomize is installed (either renders kustomizations)); fi

# A Job's pod template cannot change, so the old migration Job goes first. Settings and
# the Job are applied and the migration completes before the API and worker roll out.
deploy: ## apply OVERLAY=example to the current kubectl context: migrate, then roll out
	@command -v kubectl >/dev/null 2>&1 || $(call fail,deploy,kubectl is not installed); \
	$(call need_overlay,deploy); \
	kubectl cluster-info --request-timeout=5s >/dev/null 2>&1 \
		|| $(call fail,deploy,kubectl reaches no cluster (context: $$(kubectl config current-context 2>/dev/null || echo none))); \
	set -e; \
	kubectl delete job ticket-cart-migrate $(KUBECTL_NS) --ignore-not-found --wait=true; \
	kubectl apply -k $(OVERLAY_DIR) --selector 'app.kubernetes.io/component notin (api,worker)'; \
	kubectl wait job/ticket-cart-migrate $(KUBECTL_NS) --for=condition=complete --timeout=600s; \
	kubectl apply -k $(OVERLAY_DIR); \
	kubectl rollout status deployment/ticket-cart-api $(KUBECTL_NS) --timeout=300s; \
	kubectl rollout status deployment/ticket-cart-worker $(KUBECTL_NS) --timeout=300s

lock: ## re-pin deploy/requirements.lock from pyproject's dependencies (asks PyPI)
	@test -x $(PY) || $(call fail,lock,$(PY) is missing: create the virtualenv first); \
	$(PY) deploy/lock_requirements.py
