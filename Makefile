# switchyard: one Makefile. `make` builds build/switchyard; `make test` runs
# every test; `make demo` runs the main job on the embedded default.

BUILD    ?= build
CC       ?= cc
PKGS     := rdkafka libcurl jansson yaml-0.1 libsystemd libcrypto
OPT      ?= -O2
WARN     := -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral -Wundef -Werror
SAN      ?=
CFLAGS   += -std=c17 $(OPT) -g $(WARN) -D_GNU_SOURCE -MMD -MP -pthread $(SAN)
LDFLAGS  += -pthread $(SAN)
# The worker's allocator: jemalloc (Debian's libjemalloc-dev), measured by
# `make bench` against glibc's malloc (README, "Benchmarks"): a message makes
# dozens of small allocations on the loop's thread while librdkafka's
# threads allocate and free the same records. Sanitizer builds keep the
# C library's (ASan replaces it); ALLOC= builds without.
ALLOC    ?= $(if $(SAN),,jemalloc)
ALLOC_LIBS = $(if $(ALLOC),$(shell pkg-config --libs $(ALLOC) 2>/dev/null))
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WORKER_SRC := $(wildcard worker/*.c worker/providers/*.c)
LIB_SRC    := $(filter-out worker/main.c,$(WORKER_SRC))
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC   := $(wildcard tests/unit/*.c)
UNIT_OBJ   := $(UNIT_SRC:%.c=$(BUILD)/obj/%.o)
SUPPORT    := $(patsubst tests/support/%.c,$(BUILD)/%,$(wildcard tests/support/*.c))

.PHONY: all deps test test-faults check asan valgrind fuzz demo fmt fmt-check lint bench bench-ydoc clean install

all: $(BUILD)/switchyard

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Iworker -c $< -o $@

$(BUILD)/libswitchyard.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/switchyard: $(BUILD)/obj/worker/main.o $(BUILD)/libswitchyard.a
	$(CC) $(CFLAGS) $^ $(PKG_LIBS) $(ALLOC_LIBS) $(LDFLAGS) -o $@

$(BUILD)/unit_tests: $(UNIT_OBJ) $(BUILD)/libswitchyard.a
	$(CC) $(CFLAGS) $^ $(PKG_LIBS) $(LDFLAGS) -o $@

# test support programs: one self-contained .c each
$(BUILD)/%: tests/support/%.c
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $< $(PKG_LIBS) $(LDFLAGS) -o $@

# but sigv4_sign runs the worker's own signer (tests/cli/check_sigv4.sh)
$(BUILD)/sigv4_sign: tests/support/sigv4_sign.c $(BUILD)/libswitchyard.a
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Iworker $^ $(PKG_LIBS) $(LDFLAGS) -o $@

# and price_calc the worker's own price table and arithmetic (check_prices.sh)
$(BUILD)/price_calc: tests/support/price_calc.c $(BUILD)/libswitchyard.a
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Iworker $^ $(PKG_LIBS) $(LDFLAGS) -o $@

deps:
	@bash scripts/install-deps.sh

# make install [PREFIX=/usr/local] [DESTDIR=]: the binary, the man page,
# the example configuration (copy it to /etc/switchyard; policy.yaml
# names entries of prices.yaml beside it) and the systemd
# unit (its ExecStart names /usr/local/bin: edit it for another PREFIX)
PREFIX  ?= /usr/local
DESTDIR ?=
install: $(BUILD)/switchyard
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	    $(DESTDIR)$(PREFIX)/share/switchyard $(DESTDIR)$(PREFIX)/lib/systemd/system
	install -m 755 $(BUILD)/switchyard $(DESTDIR)$(PREFIX)/bin/switchyard
	install -m 644 config/deploy/switchyard.1 $(DESTDIR)$(PREFIX)/share/man/man1/switchyard.1
	install -m 644 config/worker.yaml config/policy.yaml config/prices.yaml \
	    $(DESTDIR)$(PREFIX)/share/switchyard/
	install -m 644 config/deploy/switchyard.service \
	    $(DESTDIR)$(PREFIX)/lib/systemd/system/switchyard.service

# deps runs first, alone: pkg-config flags are read when a recipe runs
test: deps
	@$(MAKE) --no-print-directory check

check: $(BUILD)/switchyard $(BUILD)/unit_tests $(SUPPORT)
	@BUILD=$(BUILD) bash tests/run.sh

# counted fault scenarios printed as one table (tests/faults/run.py; also
# $(BUILD)/faults.json); FAULTS_ARGS=--short runs the subset `make test` runs
test-faults: deps
	@$(MAKE) --no-print-directory $(BUILD)/switchyard $(SUPPORT)
	@BUILD=$(BUILD) /usr/bin/python3 tests/faults/run.py $(FAULTS_ARGS)

# the stages that run C code (tests/run.sh, TEST_SCOPE)
asan: deps
	@TEST_SCOPE=sanitizers $(MAKE) --no-print-directory check BUILD=build/asan OPT=-O1 \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"

valgrind: deps
	@$(MAKE) --no-print-directory $(BUILD)/unit_tests $(BUILD)/switchyard
	valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
	    -q $(BUILD)/unit_tests

FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 60
fuzz: deps
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS) BUILD=build/fuzz-lib CC=clang OPT=-O1 \
	    SAN="-fsanitize=fuzzer-no-link,address,undefined"
	@for t in $(FUZZ_TARGETS); do \
	    name=$$(basename $$t); mkdir -p build/fuzz/corpus-$$name; \
	    echo "fuzz: $$name for $(FUZZ_SECONDS) s"; \
	    $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        build/fuzz/corpus-$$name tests/fuzz/corpus/$$name || exit 1; \
	done

build/fuzz/%: tests/fuzz/%.c build/fuzz-lib/libswitchyard.a
	@mkdir -p $(dir $@)
	clang -std=c17 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE $(PKG_CFLAGS) \
	    -Iworker $^ $(PKG_LIBS) -o $@

# benchmarks (README, "Benchmarks"): scenarios a-e against measured floors,
# one table at the end and $(BUILD)/bench/results.json; BENCH_RUNS=N,
# BENCH_QUICK=1 (a one-minute smoke run). They assert no figure.
BENCH_BIN := $(addprefix $(BUILD)/,switchyard mock_kafka fake_provider bench_load bench_kafka \
               bench_http bench_json)
bench: $(BENCH_BIN)
	@BUILD=$(BUILD) bash scripts/bench.sh

# is --check-config linear in the policy's size (not part of `make bench`)
bench-ydoc: $(BUILD)/switchyard
	@BUILD=$(BUILD) bash scripts/bench_ydoc.sh

demo: deps
	@$(MAKE) --no-print-directory all $(SUPPORT)
	@BUILD=$(BUILD) bash scripts/demo.sh

# every C source and header the project formats (.clang-format)
FMT_SRC = $(wildcard worker/*.[ch] worker/providers/*.[ch] tests/unit/*.[ch] tests/support/*.c \
            tests/fuzz/*.c)

fmt:
	clang-format -i $(FMT_SRC)

# fails on any difference from .clang-format (CI runs it)
fmt-check:
	clang-format --dry-run -Werror $(FMT_SRC)

# clang-tidy with .clang-tidy (every warning is an error) and cppcheck;
# fails on any finding (CI runs it)
lint: deps
	@mkdir -p $(BUILD); rc=0; printf '%s\n' $(LIB_SRC) worker/main.c | \
	    xargs -P 2 -I '{}' clang-tidy --quiet '{}' -- -std=c17 -D_GNU_SOURCE $(PKG_CFLAGS) \
	    -Iworker >$(BUILD)/lint.log 2>&1 || rc=$$?; \
	    grep -v -e 'warnings\? generated' -e '^Suppressed' -e 'Use -header-filter' \
	        -e 'NOLINT' $(BUILD)/lint.log; \
	    if [ $$rc -ne 0 ]; then echo "lint: clang-tidy found problems"; exit 1; fi
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	    --suppress=missingIncludeSystem --include=/usr/include/x86_64-linux-gnu/sys/queue.h \
	    -Iworker worker

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
