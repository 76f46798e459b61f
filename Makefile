# Thin wrapper over CMake. The two commands a user needs: `make demo` and `make test`.
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS ?= $(shell nproc)
# Warnings are errors in CI (CI=true, set by .ci/run) or when asked: make test NAS_FATAL_WARNINGS=ON.
NAS_FATAL_WARNINGS ?= $(if $(filter true,$(CI)),ON,OFF)
# NAS_MODELS_DIR=DIR: where the tests find the reference models (docs/testing.md "Test references").
CMAKE_OPTS = -DNAS_FATAL_WARNINGS=$(NAS_FATAL_WARNINGS) $(if $(NAS_MODELS_DIR),-DNAS_MODELS_DIR=$(NAS_MODELS_DIR))

.PHONY: all setup build demo test test-asan bench fuzz install clean

all: build

setup:
	bash scripts/setup.sh

build: setup
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_OPTS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	bash scripts/demo.sh $(BUILD)/nas

# A check a test cannot run is reported as Skipped and listed at the end (scripts/run_ctest.sh);
# with CI=true or NAS_REQUIRE_ALL=1 it fails instead.
test: build
	bash scripts/run_ctest.sh $(BUILD) --output-on-failure -j $(JOBS)

# The same tests under AddressSanitizer and UBSan (CI runs this too).
test-asan: setup
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DNAS_SANITIZE=ON $(CMAKE_OPTS) >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 bash scripts/run_ctest.sh $(ASAN_BUILD) --output-on-failure -j $(JOBS)

# libFuzzer harnesses (fuzz/, docs/fuzzing.md): FUZZ_SECONDS per harness, FUZZ_JOBS at a time,
# clang build in build-fuzz. Fails when a harness finds a crash, leak or undefined behaviour.
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
fuzz: setup
	bash fuzz/run.sh -t $(FUZZ_SECONDS) -j $(FUZZ_JOBS) -b $(FUZZ_BUILD)

bench: build
	bash bench/run.sh $(BUILD)

# Installs the program and its data (docs/install.md); PREFIX=DIR installs elsewhere than the
# configured prefix (/usr/local unless CMAKE_INSTALL_PREFIX was set).
install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
