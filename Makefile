# Everything a user or CI runs goes through these targets; see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.12, the Lambda runtime's (the built layer holds cp312 wheels).
PYTHON ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && { echo $$p; break; }; done)
# One environment per job, each installed from its lock (full dependency tree, sha256 hashes):
#   .venv-serve    serving + the local API (make demo/invoke/serve)    requirements-serve.lock
#   .venv          training, tests and the benchmark (TensorFlow)       requirements-dev.lock
#   .venv-sam      the SAM CLI (sam build/validate)                     requirements-sam.lock
#   .venv-checkov  the IaC scanner (tests)                              requirements-checkov.lock
#   .venv-uv       the installer the others are installed with          requirements-uv.lock
# The layer installs layer/requirements.lock for the Lambda platform. `make lock` re-locks.
VENV := .venv
PY := $(VENV)/bin/python
SERVE_VENV := .venv-serve
SERVE_PY := $(SERVE_VENV)/bin/python
SAM := .venv-sam/bin/sam
UV := .venv-uv/bin/uv
LOCKED_INSTALL := install -q --require-hashes --no-deps --disable-pip-version-check
export TF_CPP_MIN_LOG_LEVEL ?= 2

# Training is data: training/recipes/*.toml (python -m training run RECIPE; it resumes).
RECIPE ?= training/recipes/reference.toml
REFERENCE_DATA := data/v2
REFERENCE_RUN := runs/v2
EVAL_DATA = $(PY) -m training run training/recipes/reference.toml --only val,test
# make reference-card: the new card's version, and what changed in serving.
REFERENCE_VERSION ?=
CARD_WHY ?=
# The generator's typefaces and textures (docs/training.md); not needed to serve or deploy.
TRAINING_DEBS := gimp-data mypaint-data-extras fonts-liberation2 fonts-freefont-ttf \
	fonts-dejavu-core fonts-open-sans fonts-roboto-unhinted fonts-lato fonts-croscore \
	fonts-crosextra-carlito fonts-noto-core fonts-urw-base35 fonts-clear-sans fonts-oxygen \
	fonts-cantarell
# The browser the local page's test drives, headless (tests/integration/test_local_api.py).
BROWSER_DEBS := chromium chromium-driver
DATA ?= ../shared/foreign-eval/positives
# Evaluation-only photos (another renderer's), reported in the card when present.
FOREIGN := ../shared/foreign-eval
FOREIGN_REPORT := $(if $(wildcard $(FOREIGN)/positives/labels.jsonl),\
	--report $(FOREIGN)/positives --report $(FOREIGN)/negatives)
MODEL ?= training/reference/model.tar.gz
EVENT ?= events/corners-jpeg.json
PORT ?= 3000
export SAM_CLI_TELEMETRY := 0
BUILD_STAMP := .aws-sam/build/template.yaml

.PHONY: help setup lock lint test test-fast build demo invoke serve batch-demo bench bench-data \
	load soak openapi events photos train-demo training-debs browser-debs recipe reference-model \
	reference-card gpu-pack gpu-export evaluate

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

# uv installs every lock (as pip would, ~20x faster); pip bootstraps uv from its own lock.
.venv-uv/.installed: requirements-uv.lock
	@test -n "$(PYTHON)" || { echo "Python 3.12 is required (the Lambda runtime's version)"; exit 1; }
	test -d .venv-uv || $(PYTHON) -m venv .venv-uv
	.venv-uv/bin/pip $(LOCKED_INSTALL) -r requirements-uv.lock
	touch $@

# $(call venv,folder,lock[,editable]): a venv with pip, its lock installed by uv, this project.
define venv
	test -d $(1) || $(PYTHON) -m venv $(1)
	$(UV) pip install --quiet --require-hashes --no-deps --python $(1)/bin/python -r $(2)
	$(if $(3),$(UV) pip install --quiet --no-deps --python $(1)/bin/python -e .)
	touch $(1)/.installed
endef

$(VENV)/.installed: requirements-dev.lock pyproject.toml | .venv-uv/.installed
	$(call venv,$(VENV),requirements-dev.lock,editable)

$(SERVE_VENV)/.installed: requirements-serve.lock pyproject.toml | .venv-uv/.installed
	$(call venv,$(SERVE_VENV),requirements-serve.lock,editable)

.venv-sam/.installed: requirements-sam.lock | .venv-uv/.installed
	$(call venv,.venv-sam,requirements-sam.lock)

.venv-checkov/.installed: requirements-checkov.lock | .venv-uv/.installed
	$(call venv,.venv-checkov,requirements-checkov.lock)

setup: $(VENV)/.installed $(SERVE_VENV)/.installed .venv-sam/.installed .venv-checkov/.installed  ## every environment (tests, training)

lock: .venv-uv/.installed  ## re-lock every environment from its requirements*.txt
	for f in layer/requirements requirements-serve requirements-dev requirements-sam \
		requirements-checkov requirements-uv; do $(UV) pip compile --universal --python-version 3.12 \
		--generate-hashes --no-header --quiet $$f.txt -o $$f.lock || exit 1; done

lint: setup  ## ruff
	$(VENV)/bin/ruff check .

# pytest-xdist gives each core whole test files (their module fixtures train once).
PYTEST := $(PY) -m pytest -n auto --dist loadfile

test: setup build browser-debs  ## the whole test suite (what CI runs)
	$(VENV)/bin/ruff check .
	$(PYTEST)

test-fast: setup  ## unit, handler and template tests: no training, no layer build (~1 min)
	$(VENV)/bin/ruff check .
	$(PYTEST) -m "not training and not build"

$(BUILD_STAMP): template.yaml layer/Makefile layer/requirements.lock $(wildcard layer/certcorners/*.py) $(wildcard function/*.py) | .venv-sam/.installed
	$(SAM) build

build: .venv-sam/.installed $(BUILD_STAMP)  ## sam build (no Docker): the function and both layers

demo: $(SERVE_VENV)/.installed build  ## the main job: local S3 + local API + sample photos -> corners + overlays in out/
	$(SERVE_PY) -m certcorners_tools.local demo --out out

invoke: $(SERVE_VENV)/.installed build  ## one event through the real handler, no Docker: make invoke EVENT=events/model.json
	$(SERVE_PY) -m certcorners_tools.local invoke $(EVENT)

serve: $(SERVE_VENV)/.installed build  ## local API on 127.0.0.1:$(PORT) like sam local start-api, no Docker
	$(SERVE_PY) -m certcorners_tools.local serve --port $(PORT)

batch-demo: $(SERVE_VENV)/.installed build  ## the batch state machine's work on 50 photos in a local S3: JSONL + summary in out/batch (docs/batch.md)
	$(SERVE_PY) -m certcorners_tools.archive demo --out out/batch

bench: setup build  ## benchmark: LiteRT vs TensorFlow, handler, cold start, memory (~22 min on 2 cores); BASELINE=<model.tar.gz> adds a side-by-side run; PHOTOS=<folder> times only decode + answer on its photos (REPEATS, default 3)
	$(PY) -m certcorners_tools.bench --out out/bench.json $(if $(BASELINE),--baseline $(BASELINE)) $(if $(PHOTOS),--cascade-photos $(PHOTOS) --repeats $(or $(REPEATS),3))

bench-data: setup  ## the generator: training examples a second per network, old way and new
	$(PY) -m training bench-data --count 6 --rounds 3

load: setup build  ## concurrent clients against the local API: errors and latency
	$(PY) -m certcorners_tools.soak load --clients 8 --requests 50

soak: setup build  ## 10,000 sequential warm invocations: RSS over time
	$(PY) -m certcorners_tools.soak soak --calls 10000

openapi: setup  ## rewrite docs/openapi.json from the function's code (a test checks it)
	$(PY) -m certcorners_tools.openapi

events: setup  ## rebuild events/ from the committed sample photos
	$(PY) -m certcorners_tools.events

photos: setup  ## redraw the sample photos and the tests' held-out photos with this machine's fonts and textures, then the events (other photos than the committed ones: docs/local.md)
	$(PY) -m certcorners_tools.events --photos

train-demo: setup  ## small generate -> train -> export -> evaluate run (minutes, CPU)
	$(PY) -m training demo --out runs/demo

# Debian packages, installed where this is root on Debian, else named: $(call debs,<packages>,<why>)
define debs
	@if dpkg -s $(1) >/dev/null 2>&1; then echo "$(2): present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			-o DPkg::Lock::Timeout=600 --no-install-recommends $(1); \
	else echo "$(2): install these Debian packages (or their equivalents): $(1)"; fi
endef

training-debs:  ## Debian packages for the generator: fonts and photographic textures (root)
	$(call debs,$(TRAINING_DEBS),the generator's fonts and textures (docs/training.md))

browser-debs:  ## Debian's Chromium and ChromeDriver, for the local page's browser test (root)
	$(call debs,$(BROWSER_DEBS),the page test's browser)

recipe: setup training-debs  ## run a training recipe, resuming: make recipe RECIPE=training/recipes/<name>.toml
	$(PY) -m training run $(RECIPE)

reference-model: setup training-debs  ## rebuild the committed package by its recipe (training/recipes/reference.toml; ~6.3 h on 2 cores with its data; resumes)
	$(PY) -m training run training/recipes/reference.toml

reference-card: setup  ## the committed package's networks as they are, with a card measured as served now (REFERENCE_VERSION=<its version> CARD_WHY=<what changed in serving>)
	@test -n "$(REFERENCE_VERSION)" || { echo "REFERENCE_VERSION= must name the card's version"; exit 2; }
	$(EVAL_DATA)
	$(PY) -m training recard --package $(MODEL) --out $(REFERENCE_RUN)/recard \
		--val $(REFERENCE_DATA)/val --test $(REFERENCE_DATA)/test \
		--version $(REFERENCE_VERSION) --why "$(CARD_WHY)" $(FOREIGN_REPORT)
	rm -rf training/reference/evaluation training/reference/evaluation-* training/reference/*.keras
	cp $(REFERENCE_RUN)/recard/package/model.tar.gz $(REFERENCE_RUN)/recard/package/*.keras \
		$(REFERENCE_RUN)/recard/package/model_card.json training/reference/
	cp -r $(REFERENCE_RUN)/recard/evaluation* training/reference/

gpu-pack: setup training-debs  ## .gpu/ for a GPU machine (docs/training.md, "Training on a GPU machine"): Keras wheels, the generator's fonts and textures
	PY=$(PY) bash tools/gpu/pack.sh

FROM ?=
GPU_RUN := runs/gpu/locator
GPU_VERSION ?= $(shell date -u +%Y%m%d-%H%M)-gpu
gpu-export: setup  ## FROM=<its files>: a GPU-trained locator + the reference refiner -> runs/gpu/locator/package (evaluated)
	@test -n "$(FROM)" && test -f "$(FROM)/model.keras" || { echo "FROM= must name the folder \
		with the model.keras that tools/gpu/train.sh sent back"; exit 2; }
	$(EVAL_DATA)
	mkdir -p $(GPU_RUN)
	cp $(FROM)/model.keras $(FROM)/history.csv $(FROM)/train_config.json \
		$(FROM)/train_metrics.json $(GPU_RUN)/
	train_dir=$$($(PY) -c 'import json, sys; print(json.load(open(sys.argv[1]))["train_dirs"][0])' \
		$(FROM)/train_config.json) && mkdir -p $$train_dir && cp $(FROM)/dataset.json $$train_dir/
	$(PY) -m training export --run $(GPU_RUN) --refiner-from $(MODEL) \
		--val $(REFERENCE_DATA)/val --test $(REFERENCE_DATA)/test --version $(GPU_VERSION) \
		--notes "The reference locator fine-tuned on a GPU machine by tools/gpu/train.sh \
		(train_config.json: its data and schedule); the refiner is $(MODEL)'s, byte for byte." \
		$(FOREIGN_REPORT)

evaluate: setup  ## a model on any labelled folder: make evaluate DATA=../shared/foreign-eval/positives
	$(PY) -m training evaluate --model $(MODEL) --data $(DATA) --out out/evaluate/$(notdir $(DATA))
