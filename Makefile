# Two commands set everything up on a fresh machine with Python >= 3.11 and make:
#   make demo   the whole flow on virtual chips (SQLite); WIRE=1: every chip over the wire
#   make test   ruff, mypy (strict on src/) and the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo-out
CHIPS ?= 1000
# WIRE=1: every chip only through the wire (boards as processes, each lot chip a program of its
# own), so a smaller lot: WIRE_CHIPS
WIRE_CHIPS ?= 20
BENCH_CHIPS ?= 1000000
BENCH_RECEIPTS ?= 1000000
BENCH_OUT ?= bench-out
# ICM_KEYS=pkcs11: the demo's ICM keys in a SoftHSM2 token made for it in $(DEMO_DIR).softhsm
ICM_KEYS ?= files
DEMO_HSM = $(abspath $(DEMO_DIR)).softhsm
SOFTHSM_MODULE ?= /usr/lib/softhsm/libsofthsm2.so

.PHONY: all venv demo test lint typecheck unit bench attacks fuzz vectors clean bench-wire wire-faults bench-dashboard conformance-mutants conformance-matrix bench-line-rate bench-line-rate-compressed

all: test

$(BIN)/trustprov: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "trustprov needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(BIN)/trustprov

# never deletes what it did not make: `demo --replace` replaces a previous demo's DEMO_DIR only
# if it holds that demo's files, unchanged, and nothing else (its marker lists them); the token
# directory is replaced only if it carries the marker this target wrote into it
demo: venv
ifeq ($(ICM_KEYS),pkcs11)
	@if [ -n "$$(ls -A $(DEMO_DIR) 2>/dev/null)" ] && [ ! -f $(DEMO_DIR)/.trustprov-demo.json ]; then \
	  echo "error: $(DEMO_DIR) is not empty and is not a previous demo's output; give another DEMO_DIR" >&2; exit 2; fi
	@if [ -e $(DEMO_HSM) ] && [ ! -f $(DEMO_HSM)/.trustprov-demo-softhsm ]; then \
	  echo "error: $(DEMO_HSM) exists and is not a previous demo's token directory; move it or give another DEMO_DIR" >&2; exit 2; fi
	rm -rf $(DEMO_HSM) && mkdir -p $(DEMO_HSM)/tokens && touch $(DEMO_HSM)/.trustprov-demo-softhsm
	printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\n' $(DEMO_HSM) > $(DEMO_HSM)/softhsm2.conf
	umask 077 && printf 'demo-pin' > $(DEMO_HSM)/pin
	SOFTHSM2_CONF=$(DEMO_HSM)/softhsm2.conf softhsm2-util --init-token --free --label trustprov-demo --so-pin demo-so-pin --pin demo-pin >/dev/null
	SOFTHSM2_CONF=$(DEMO_HSM)/softhsm2.conf $(BIN)/trustprov demo --chips $(CHIPS) --out $(DEMO_DIR) --replace \
	  --icm-keys 'pkcs11:token=trustprov-demo?module-path=$(SOFTHSM_MODULE)&pin-source=file:$(DEMO_HSM)/pin'
else ifeq ($(WIRE),1)
	$(BIN)/trustprov demo --wire --chips $(WIRE_CHIPS) --out $(DEMO_DIR) --replace
else
	$(BIN)/trustprov demo --chips $(CHIPS) --out $(DEMO_DIR) --replace
endif

lint: venv
	$(BIN)/ruff check src tests bench fuzz chip-c/tools
	$(BIN)/ruff format --check src tests bench fuzz chip-c/tools

typecheck: venv
	$(BIN)/mypy

# one test process per core (pytest-xdist): the suite is I/O- and subprocess-bound, and the two
# cores of CI finish it well inside the 10-minute budget; TEST_JOBS=0 runs it in one process.
# loadgroup: tests/cli runs in one process, so its guard sees every command the package invoked
TEST_JOBS ?= auto
unit: venv
	$(BIN)/pytest -n $(TEST_JOBS) --dist loadgroup

# the C chip (chip-c/) is built and its unit tests run first: tests/chipc drives the program
test: lint typecheck chip-c-unit unit

# a lot of a million chips, manufactured once, provisioned with 1 and then 2 workers (~30 min),
# and the other benchmarks; BENCH_CHIPS=10000 for a quick look. Each one's output is kept in
# $(BENCH_OUT); the last line is all their figures in one JSON object (bench/summary.py)
bench: venv
	rm -rf $(BENCH_OUT) && mkdir -p $(BENCH_OUT)
	$(BIN)/python bench/startup.py --importtime > $(BENCH_OUT)/startup.txt && cat $(BENCH_OUT)/startup.txt
	$(BIN)/python bench/provision.py --chips $(BENCH_CHIPS) --workers 1,2 > $(BENCH_OUT)/provision.txt && cat $(BENCH_OUT)/provision.txt
	$(BIN)/python bench/lots.py --chips 2000000 > $(BENCH_OUT)/lots.txt && cat $(BENCH_OUT)/lots.txt
	$(BIN)/python bench/reconcile.py --receipts $(BENCH_RECEIPTS) > $(BENCH_OUT)/reconcile.txt && cat $(BENCH_OUT)/reconcile.txt
	$(BIN)/python bench/stream.py --sizes-mib 1,64,900 > $(BENCH_OUT)/stream.txt && cat $(BENCH_OUT)/stream.txt
	$(BIN)/python bench/seal.py --mib 64 > $(BENCH_OUT)/seal.txt && cat $(BENCH_OUT)/seal.txt
	$(BIN)/python bench/floor.py > $(BENCH_OUT)/floor.txt && cat $(BENCH_OUT)/floor.txt
	$(BIN)/python bench/manufacture.py --chips 20000 > $(BENCH_OUT)/manufacture.txt && cat $(BENCH_OUT)/manufacture.txt
	$(BIN)/python bench/summary.py $(BENCH_OUT)/*.txt

# the attack suite at full strength: every byte flip, >= 10,000 random flips per large artifact
attacks: venv
	TRUSTPROV_ATTACKS_FULL=1 $(BIN)/pytest tests/attacks -q -s -p no:randomly

# the whole conformance suite against every broken chip of tests/conformance/mutants.py (a few
# minutes); the last line is "N of M broken chips detected", exit 1 unless all are
conformance-mutants: venv
	$(BIN)/python tests/conformance/run_mutants.py

# `chip conformance` on the virtual chip in every signature suite over a pty, TCP and a board's
# socket, a fresh chip each; the last line is "N of M runs passed" (make test runs them too)
conformance-matrix: venv
	$(BIN)/python tests/conformance/run_matrix.py

# >= 100,000 inputs per parser of untrusted bytes, outside make test's time budget
fuzz: venv
	$(BIN)/python fuzz/run.py

# a lot over TCP loopback to chip boards in their own processes: station CPU per chip
bench-wire: venv
	$(BIN)/python bench/wire.py --chips 2000 --boards 2 --sockets 16

# a lot over a board whose sockets are UARTs: seconds per chip against the line-rate floor
bench-line-rate: venv
	$(BIN)/python bench/line_rate.py --rates 115200,1000000,3000000 --chips 6 --slow-chips 2 --turnaround-ms 1

# the same with a real firmware image, sealed as it is and deflated (docs/performance.md): the C
# chip's core cross-compiled for a Cortex-M33, linked with the whole of Debian's newlib libc and
# libm for it (arm-none-eabi), its loadable sections as a flat image of 335 KB
ARM_CC ?= arm-none-eabi-gcc
NEWLIB ?= /usr/lib/arm-none-eabi/newlib/thumb/v8-m.main/nofp
BENCH_FIRMWARE := chip-c/build/arm/firmware.bin
$(BENCH_FIRMWARE):
	$(MAKE) -s -C chip-c size > /dev/null
	$(ARM_CC) -mcpu=cortex-m33 -mthumb -nostartfiles -nostdlib -Wl,--allow-multiple-definition \
		-Wl,--unresolved-symbols=ignore-all -Wl,-e,tp_link_feed -Wl,-Ttext=0x08000000 \
		chip-c/build/arm/*.o -Wl,--whole-archive $(NEWLIB)/libc.a $(NEWLIB)/libm.a \
		-Wl,--no-whole-archive -o chip-c/build/arm/firmware.elf
	arm-none-eabi-objcopy -O binary -j .text -j .rodata -j .data chip-c/build/arm/firmware.elf $@

bench-line-rate-compressed: venv $(BENCH_FIRMWARE)
	$(BIN)/python bench/line_rate.py --rates 115200,1000000,3000000 --chips 6 --slow-chips 2 \
		--turnaround-ms 1 --firmware $(BENCH_FIRMWARE) --compress none,deflate

# the dashboard's refresh against a synthetic records store of a million chips, 12 stations
bench-dashboard: venv
	$(BIN)/python bench/dashboard.py --chips 1000000 --stations 12

# 2,000 chips over TCP with 1 % of frames dropped, 1 % corrupted, a power cut in 1 chip of 50
wire-faults: venv
	TRUSTPROV_WIRE_FAULT_CHIPS=2000 $(BIN)/pytest tests/line/test_line_wire.py -q -k faults_on_every_wire

vectors: venv
	$(BIN)/python tests/vectors/generate.py
	$(BIN)/python tests/conformance/generate_family.py
	$(BIN)/python tests/vectors/generate_receipt.py
	$(BIN)/python tests/vectors/generate_link_messages.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) $(DEMO_HSM) $(BENCH_OUT) .mypy_cache .ruff_cache .pytest_cache .hypothesis

# the chip side in C (chip-c/, docs/porting.md "The C port"): Debian's libmbedtls-dev,
# libsodium-dev, zlib1g-dev, libcmocka-dev, clang, cppcheck and gcc-arm-none-eabi (.ci/run
# installs them)
.PHONY: chip-c chip-c-unit chip-c-test chip-c-size fuzz-c demo-c
FUZZ_C_RUNS ?= 100000
chip-c:
	$(MAKE) -C chip-c

# the build and the cmocka unit tests (part of make test); without the C toolchain they are
# skipped with the reason, except under CI (CI set), where they must run
chip-c-unit:
	@if [ -n "$$CI" ] || { command -v cc >/dev/null && [ -e /usr/include/mbedtls/gcm.h ] && \
	    [ -e /usr/include/sodium.h ] && [ -e /usr/include/zlib.h ] && \
	    [ -e /usr/include/cmocka.h ]; }; then \
	    $(MAKE) -s -C chip-c test; \
	else echo "chip-c: skipped, no C toolchain (.ci/run's setup_chipc installs it)"; fi

# also under AddressSanitizer and UndefinedBehaviorSanitizer, and cppcheck
chip-c-test: chip-c-unit
	$(MAKE) -s -C chip-c test-asan cppcheck

# trustprov's own C cross-compiled for a Cortex-M33; the last line is one JSON object
chip-c-size:
	$(MAKE) -s -C chip-c size

# libFuzzer over every decoder of the C chip, FUZZ_C_RUNS inputs each
fuzz-c: venv
	$(MAKE) -C chip-c fuzz FUZZ_C_RUNS=$(FUZZ_C_RUNS) PYTHON=$(abspath $(BIN))/python

# the whole flow on C chips only, over a chip board of C programs (chip-c/tools/demo_c.py):
# ends with the OEM's reconciliation line, as make demo does
CHIPS_C ?= 16
SOCKETS_C ?= 4
DEMO_C_DIR ?= demo-c-out
demo-c: venv chip-c
	$(BIN)/python chip-c/tools/demo_c.py --chips $(CHIPS_C) --sockets $(SOCKETS_C) --out $(DEMO_C_DIR) --replace
