# vfio-migd: everything a user types. Each target installs what is missing first.
#   make demo    a QEMU guest migrates with devices held by vfio-migd (dbus-vmstate)
#   make demo-daemons  the two-daemon demo: simulated devices, vfio-migctl, no VM
#   make check   every test: normal build (warnings are errors), then ASan+UBSan,
#                the fuzz harnesses briefly, the real-kernel and systemd tiers
BUILD      ?= build
BUILD_SAN  ?= build-sanitize
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 60
MESON_OPTS ?= -Dwerror=true

.PHONY: all deps build demo demo-daemons bench dirty check check-unit check-sanitize check-kernel check-systemd check-vmm fuzz format format-check clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

demo: build
	bash scripts/demo-vm.sh $(BUILD)

demo-daemons: build
	bash scripts/demo.sh $(BUILD)

# benchmarks: each prints its ratio against the reference measured in the same run.
# "make bench" runs them all; "make bench dirty" only the dirty-tracking ones.
bench: build
ifeq ($(filter dirty,$(MAKECMDGOALS)),)
	$(BUILD)/bench/migd-bench
endif
	$(BUILD)/bench/migd-bench-dirty

# a goal word for "make bench dirty"; does nothing alone
dirty:
	@:

check: deps
	bash scripts/run-tests.sh

check-unit: build
	meson test -C $(BUILD) --print-errorlogs

check-sanitize: deps
	bash scripts/run-tests.sh --sanitize-only

check-kernel: deps
	BUILD=$(BUILD) bash scripts/check-kernel.sh

# the systemd tier: vfio-migd.service installed into a guest booted with systemd
# as PID 1, real mtty devices, the real system bus (part of `make check` too)
check-systemd: deps
	BUILD=$(BUILD) bash scripts/check-systemd.sh

# the VMM tier: the dbus-vmstate adapter with a stand-in QEMU and with the real
# qemu-system-x86_64 (TCG, loopback), part of every `make check` run too
check-vmm: build
	meson test -C $(BUILD) --suite vmm --print-errorlogs

# libFuzzer harnesses (docs/fuzzing.md): clang build in $(BUILD_FUZZ), each run
# FUZZ_SECONDS on a copy of its seed corpus; fails on any crash
fuzz: deps
	BUILD_FUZZ=$(BUILD_FUZZ) FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/run-fuzz.sh

format: deps
	git ls-files '*.c' '*.h' | xargs clang-format -i

format-check: deps
	git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ)
