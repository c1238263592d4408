# Cluster images, included from the main Makefile.
#   make images                                   build and tag every image family with the package version
#   make images-push                              push them
#   make images SSL_LIB_IMAGE_REGISTRY=reg/me     another registry (set it when compiling pipelines too)
# Image names and tags come from components/images.py, the one place that names them.
PY ?= .venv/bin/python
DOCKER ?= docker
DOCKER_BUILD_FLAGS ?=
ifdef SSL_LIB_IMAGE_REGISTRY
export SSL_LIB_IMAGE_REGISTRY
endif

.PHONY: images images-push images-list

images-list:
	@$(PY) -m components.images

images:
	@set -e; $(PY) -m components.images | while read family image dockerfile; do \
	  build_args=""; \
	  if [ "$$family" = bench ]; then \
	    build_args="--build-arg TRAINING_IMAGE=$$($(PY) -m components.images | awk '$$1 == "cuda" {print $$2}')"; \
	  fi; \
	  echo "building $$image from $$dockerfile"; \
	  $(DOCKER) build $(DOCKER_BUILD_FLAGS) -f "$$dockerfile" $$build_args -t "$$image" . ; \
	done

images-push:
	@set -e; $(PY) -m components.images | while read family image dockerfile; do \
	  echo "pushing $$image"; \
	  $(DOCKER) push "$$image"; \
	done
