# vfio-migd: everything a user types. Each target installs what is missing first.
#   make demo    simulated migration demo: two daemons on a private D-Bus, vfio-migctl
#   make check   every test: normal build (warnings are errors), then ASan+UBSan
BUILD      ?= build
BUILD_SAN  ?= build-sanitize
MESON_OPTS ?= -Dwerror=true

.PHONY: all deps build demo bench check check-unit check-sanitize check-kernel format format-check clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

demo: build
	bash scripts/demo.sh $(BUILD)

# benchmarks: each prints its ratio against the reference measured in the same run
bench: build
	$(BUILD)/bench/migd-bench

check: deps
	bash scripts/run-tests.sh

check-unit: build
	meson test -C $(BUILD) --print-errorlogs

check-sanitize: deps
	bash scripts/run-tests.sh --sanitize-only

check-kernel: deps
	BUILD=$(BUILD) bash scripts/check-kernel.sh

format: deps
	git ls-files '*.c' '*.h' | xargs clang-format -i

format-check: deps
	git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror

clean:
	rm -rf $(BUILD) $(BUILD_SAN)
