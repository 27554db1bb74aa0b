# The two commands of the README: `make run` and `make test`.
CARGO ?= cargo
# Tests also build the tract backend, to check both backends agree.
TEST_FEATURES ?= tract

.PHONY: run test setup lint bench demo gpu

## Install system packages, fetch and verify models and fixtures.
setup:
	@scripts/setup.sh

## Build (release) and run the service on the embedded store, printing a demo API key.
run: setup
	$(CARGO) build --release
	@scripts/run.sh target/release/rostro

## The face pipeline on the fixture photos, from the command line.
demo: setup
	$(CARGO) build --release
	@scripts/demo.sh target/release/rostro

## Build and run the whole test suite (unit + integration, both backends).
test:
	@ROSTRO_SETUP_TEST=1 scripts/setup.sh
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --features $(TEST_FEATURES) --no-fail-fast; \
	else \
	  $(CARGO) test --features $(TEST_FEATURES) --no-fail-fast; \
	fi

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --features $(TEST_FEATURES) -- -D warnings

## ONNX Runtime's GPU build with CUDA 13 and cuDNN 9 from PyPI (1.6 GB of wheels, sha256-pinned)
## into models/runtime/gpu/, for `vision.device = "cuda"`; then `rostro --device cuda bench --batch 1,8,32,64`.
gpu: setup
	@python3 scripts/fetch.py --only gpu

## Per-stage benches (criterion, release) on the 640x480 frame OpenCV was measured on.
bench: setup
	$(CARGO) bench --bench pipeline
