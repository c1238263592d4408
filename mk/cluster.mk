# Cluster images, included from the main Makefile.
#   make images                                   build and tag every image family with the package version
#   make images-push                              push them
#   make images SSL_LIB_IMAGE_REGISTRY=reg/me     another registry (set it when compiling pipelines too)
# Image names and tags come from components/images.py, the one place that names them.
#
# Kubeflow Pipelines (README.md, "Run on Kubeflow"); KFP_HOST=https://... or $KFP_HOST names the endpoint:
#   make golden                          rewrite pipelines/compiled/*.yaml with the default registry (commit them)
#   make submit PARAMS="source=s3://b/raw launcher=pytorchjob" [PIPELINE=benchmark] [EXPERIMENT=ssl-lib]
#   make schedule PARAMS="dataset_uri=s3://b/d checkpoint_uri=s3://b/c.pth" [CRON="0 0 2 * * *"]
# PARAMS: space-separated KEY=VALUE, values as `kfp run create` reads them (JSON first); SUBMIT_FLAGS /
# SCHEDULE_FLAGS pass more options (--namespace, --pipeline-root, --no-cache, --replace, ...).
PY ?= .venv/bin/python
DOCKER ?= docker
DOCKER_BUILD_FLAGS ?=
ifdef SSL_LIB_IMAGE_REGISTRY
export SSL_LIB_IMAGE_REGISTRY
endif

PIPELINE ?= pretrain_and_benchmark
EXPERIMENT ?= ssl-lib
PARAMS ?=
CRON ?= 0 0 2 * * *
KFP_HOST ?=
SUBMIT_FLAGS ?=
SCHEDULE_FLAGS ?=
kfp_params = $(if $(KFP_HOST),--host '$(KFP_HOST)') $(foreach p,$(PARAMS),--param '$(p)')

.PHONY: images images-push images-list golden submit schedule

images-list:
	@$(PY) -m components.images

images:
	@set -e; $(PY) -m components.images | while read family image dockerfile; do \
	  build_args=""; \
	  if [ "$$family" = bench ] || [ "$$family" = detseg ]; then \
	    build_args="--build-arg TRAINING_IMAGE=$$($(PY) -m components.images | awk '$$1 == "cuda" {print $$2}')"; \
	  fi; \
	  echo "building $$image from $$dockerfile"; \
	  $(DOCKER) build $(DOCKER_BUILD_FLAGS) -f "$$dockerfile" $$build_args -t "$$image" . ; \
	done

# After each push, the digest the registry gave the tag goes to images/digests.json (the RepoDigests
# entry of this repository); compiled pipelines then pin <repo>@sha256:... (components/images.py).
images-push:
	@set -e; $(PY) -m components.images | while read family image dockerfile; do \
	  echo "pushing $$image"; \
	  $(DOCKER) push "$$image"; \
	  repo_digest=$$($(DOCKER) inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$$image" \
	    | grep -F "$${image%:*}@" | head -n 1); \
	  $(PY) -m components.images record "$$family" "$$repo_digest"; \
	done

golden:
	env -u SSL_LIB_IMAGE_REGISTRY $(PY) -m pipelines.compile

submit: compile
	$(PY) -m pipelines.submit --pipeline '$(PIPELINE)' --experiment '$(EXPERIMENT)' $(kfp_params) $(SUBMIT_FLAGS)

schedule: compile
	$(PY) -m pipelines.schedule --cron '$(CRON)' $(kfp_params) $(SCHEDULE_FLAGS)
