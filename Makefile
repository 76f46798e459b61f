# Thin wrapper over CMake. The two commands a user needs: `make demo` and `make test`.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
# Warnings are errors in CI (CI=true, set by .ci/run) or when asked: make test NAS_FATAL_WARNINGS=ON.
NAS_FATAL_WARNINGS ?= $(if $(filter true,$(CI)),ON,OFF)
CMAKE_OPTS = -DNAS_FATAL_WARNINGS=$(NAS_FATAL_WARNINGS)

.PHONY: all setup build demo test test-asan bench install clean

all: build

setup:
	bash scripts/setup.sh

build: setup
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_OPTS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	bash scripts/demo.sh $(BUILD)/nas

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The same tests under AddressSanitizer and UBSan (CI runs this too).
test-asan: setup
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DNAS_SANITIZE=ON $(CMAKE_OPTS) >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

bench: build
	bash bench/run.sh $(BUILD)

# Installs the program and its data (docs/install.md); PREFIX=DIR installs elsewhere than the
# configured prefix (/usr/local unless CMAKE_INSTALL_PREFIX was set).
install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
