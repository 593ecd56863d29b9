# make test   install what is missing (Debian packages, .venv, kernel fixtures), then run the test suite
# make demo   the main job on the built-in default target: profile all of xipbench on the RP2350 twin (a model), to
#             its end, and report it beside the twin's exact truth (only python3-venv from apt)
# make demo-kernel  boot the test Linux kernel in QEMU and read its log with xipscope dmesg
# make bench  run the benchmarks against the anchors, measured in the same run
# make reports  regenerate the example reports in reports/ with the project's own commands

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := gdb-multiarch qemu-system-misc gcc-riscv64-linux-gnu binutils-riscv64-linux-gnu \
	gcc-riscv64-unknown-elf linux-source-6.1 linux-source-6.12 device-tree-compiler patch flex bison bc libelf-dev libssl-dev \
	binutils-arm-none-eabi openocd make xz-utils python3-venv chromium tmux gcc libc6-dev
PYTEST_ARGS ?=

.PHONY: test demo demo-kernel bench reports deps deps-venv venv fixtures clean

# $(call apt_install,PACKAGES): install those of PACKAGES that are missing.
apt_install = missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# Everything the tests, kernel fixtures, benchmarks and reports use (QEMU, toolchains, kernel source, chromium).
deps:
	@$(call apt_install,$(APT_PACKAGES))

# What the venv, and so `make demo` (the twin is Python), needs: python3 -m venv.
deps-venv:
	@$(call apt_install,python3-venv)

$(VENV)/.installed: pyproject.toml setup.py | deps-venv
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

fixtures: deps
	python3 kernel/build.py

test: deps venv fixtures
	$(PY) -m pytest $(PYTEST_ARGS)

demo: venv
	rm -rf build/demo
	$(PY) -m xipscope profile --target sim://firmware/xipbench.elf --elf firmware/xipbench.elf --until exit \
		--rate 500 --out build/demo

demo-kernel: deps venv
	PATH=$(abspath $(VENV))/bin:$$PATH $(PY) kernel/demo.py

bench: deps venv fixtures
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

reports: deps venv fixtures
	$(PY) reports/make_reports.py

clean:
	rm -rf $(VENV) .pytest_cache
