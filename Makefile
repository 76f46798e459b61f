# Thin wrapper over CMake. The two commands a user needs: `make demo` and `make test`.
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS ?= $(shell nproc)

.PHONY: all setup build demo test test-asan bench fuzz clean

all: build

setup:
	bash scripts/setup.sh

build: setup
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	bash scripts/demo.sh $(BUILD)/nas

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The same tests under AddressSanitizer and UBSan (CI runs this too).
test-asan: setup
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DNAS_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 NAS_SANITIZED=1 ctest --output-on-failure -j $(JOBS)

# libFuzzer harnesses (fuzz/, docs/fuzzing.md): FUZZ_SECONDS per harness, FUZZ_JOBS at a time,
# clang build in build-fuzz. Fails when a harness finds a crash, leak or undefined behaviour.
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
fuzz: setup
	bash fuzz/run.sh -t $(FUZZ_SECONDS) -j $(FUZZ_JOBS) -b $(FUZZ_BUILD)

bench: build
	bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
