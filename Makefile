# vfio-migd: everything a user types. Each target installs what is missing first.
#   make demo    a QEMU guest migrates with devices held by vfio-migd (dbus-vmstate)
#   make demo-daemons  the two-daemon demo: simulated devices, vfio-migctl, no VM
#   make bench   the benchmarks, one table (make bench-strict: exit 1 on a missed target)
#   make check   every test: normal build (warnings are errors), then ASan+UBSan,
#                the fuzz harnesses briefly, the real-kernel tier, the packages, the systemd tier
BUILD      ?= build
BUILD_SAN  ?= build-sanitize
BUILD_FUZZ ?= build-fuzz
BUILD_INSTALL ?= build-install
FUZZ_SECONDS ?= 60
MESON_OPTS ?= -Dwerror=true

.PHONY: all deps build install package check-package demo demo-daemons bench bench-strict bench-deps dirty check check-unit check-sanitize check-kernel check-systemd check-vmm fuzz format format-check clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# install on this host (README "Install on a host"; the packages are better): its
# own build directory with prefix /usr, /etc and /var, so the D-Bus policy, the
# units and the libvirt hook land where the system reads them. DESTDIR=DIR installs
# under DIR. Configuration files already in /etc are kept.
$(BUILD_INSTALL)/build.ninja:
	meson setup $(BUILD_INSTALL) --prefix=/usr --sysconfdir=/etc --localstatedir=/var -Dtests=false

install: deps $(BUILD_INSTALL)/build.ninja
	meson install -C $(BUILD_INSTALL) $(if $(DESTDIR),--destdir "$(DESTDIR)")

# the Debian packages vfio-migd and vfio-migd-plugin-dev (debian/), built into
# DEB_OUT (default build-deb/); check-package also runs lintian and installs them
# with dpkg into a throw-away root and checks the installed tree
package: deps
	bash scripts/check-package.sh --build-only

check-package: deps
	bash scripts/check-package.sh

demo: build
	bash scripts/demo-vm.sh $(BUILD)

demo-daemons: build
	bash scripts/demo.sh $(BUILD)

# benchmarks: one table (metric, ours, reference, ratio, target, met) and a summary line for
# everything run; exit 0 when they ran, whatever the ratios. "make bench dirty" runs only the
# dirty-tracking ones; "make bench-strict" exits 1 when a target is missed (for CI). The
# results also go to $(BUILD)/bench/bench-results.json and, with gnuplot, .svg/.png beside it.
BENCH_RESULTS = $(BUILD)/bench/bench-results
BENCH_ARGS = $(if $(filter dirty,$(MAKECMDGOALS)),--only dirty) --json $(BENCH_RESULTS).json

bench: build bench-deps
	$(BUILD)/bench/migd-bench $(BENCH_ARGS)
	@bash bench/bench-chart.sh $(BENCH_RESULTS).json $(BENCH_RESULTS)

bench-strict: build bench-deps
	$(BUILD)/bench/migd-bench $(BENCH_ARGS) --strict; rc=$$?; \
	bash bench/bench-chart.sh $(BENCH_RESULTS).json $(BENCH_RESULTS); exit $$rc

# gnuplot for the chart, installed only when missing; never fails the bench
bench-deps:
	@command -v gnuplot >/dev/null 2>&1 || bash bench/bench-chart.sh --install || true

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
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ) $(BUILD_INSTALL) build-deb
