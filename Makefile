# Herald: SMS and MMS notification gateway.
# Plain non-recursive GNU Makefile. `make` builds build/herald; `make test`
# builds everything under AddressSanitizer and UBSan and runs unit then
# integration tests; `make run` starts the gateway on the shipped config.

PKGS     := gammu libcurl hiredis libconfig jansson libcrypto libmicrohttpd
CC       ?= cc
OPT      ?= -O2 -g
WARN     := -Wall -Wextra -Werror -Wstrict-prototypes -Wwrite-strings -Wno-unused-parameter
CSTD     := -std=c11 -D_GNU_SOURCE
BUILD    ?= build
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

ifeq ($(SANITIZER),1)
  OPT    := -O1 -g $(SANITIZE_FLAGS)
  LDSAN  := $(SANITIZE_FLAGS)
endif
# libFuzzer harnesses (tests/fuzz/): clang, ASan + UBSan + coverage. No
# -Werror here: clang warns differently from gcc, and gcc's build is the
# one that must stay clean.
ifeq ($(FUZZER),1)
  CC     := clang
  OPT    := -O1 -g -fsanitize=address,undefined,fuzzer-no-link -fno-omit-frame-pointer
  LDSAN  := -fsanitize=address,undefined,fuzzer
  WARN   := -Wall -Wextra -Wno-unused-parameter
endif

PKG_OK    := $(shell pkg-config --exists $(PKGS) 2>/dev/null && echo yes)
PKG_CFLAGS := $(if $(PKG_OK),$(shell pkg-config --cflags $(PKGS)),)
PKG_LIBS   := $(if $(PKG_OK),$(shell pkg-config --libs $(PKGS)),)

CFLAGS   += $(CSTD) $(OPT) $(WARN) -MMD -MP -I. $(PKG_CFLAGS)
LDLIBS   += $(PKG_LIBS) -lpthread -lm
LDFLAGS  += $(LDSAN)

MODULE_SRC := $(wildcard templates/*.c queue/*.c providers/*.c gateway/*.c)
LIB_SRC    := $(filter-out gateway/main.c,$(MODULE_SRC))
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ   := $(BUILD)/obj/gateway/main.o
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
EMU_SRC    := $(wildcard tests/emulators/*.c)
EMU_BIN    := $(EMU_SRC:tests/emulators/%.c=$(BUILD)/emulators/%)
BENCH_SRC  := $(wildcard bench/*.c)
BENCH_BIN  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN   := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/fuzz/%)
FUZZ_SECONDS ?= 60
# the builds of `make test` use every core
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
TOOL_SRC   := $(wildcard tests/tools/*.c)
TOOL_BIN   := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

.PHONY: all deps run test unit integration clean bench bench-providers bench-api fuzz
all: $(BUILD)/herald

deps:
	@./scripts/deps.sh

$(BUILD)/herald: deps-check $(LIB_OBJ) $(MAIN_OBJ)
	$(CC) $(LDFLAGS) -o $@ $(LIB_OBJ) $(MAIN_OBJ) $(LDLIBS)

# Fails with the exact apt-get line when a -dev package is missing.
.PHONY: deps-check
deps-check:
	@pkg-config --exists $(PKGS) || ./scripts/deps.sh --check

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS)

$(BUILD)/emulators/%: tests/emulators/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS) -lutil

# Benchmark programs link the modules like the gateway does.
$(BUILD)/bench/%: bench/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS)

$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS)

$(BUILD)/tools/%: tests/tools/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

# Each target that needs the build runs it in a sub-make after `deps`: the
# pkg-config flags above are read when make starts, before deps.sh may have
# installed the -dev packages.
run: deps
	@$(MAKE) --no-print-directory $(BUILD)/herald
	@./scripts/run.sh

# Tests build into build/san with both sanitizers, so a plain `make` build
# is never mixed with instrumented objects.
# The test tools (tests/tools: jget, mkimg, apibench) are built plain: they
# are not what is tested, and the scripts run jget thousands of times (5 ms
# a start plain, 80 under ASan with its leak check).
test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) $(BUILD)/herald $(TOOL_BIN)
	@$(MAKE) --no-print-directory -j$(JOBS) SANITIZER=1 BUILD=build/san build/san/herald \
	    $(UNIT_BIN:$(BUILD)/%=build/san/%) $(EMU_BIN:$(BUILD)/%=build/san/%)
	@$(MAKE) --no-print-directory -j$(JOBS) FUZZER=1 BUILD=build/fuzz $(FUZZ_BIN)
	@./tests/run.sh build/san

unit: deps
	@$(MAKE) --no-print-directory SANITIZER=1 BUILD=build/san $(UNIT_BIN:$(BUILD)/%=build/san/%)
	@./tests/run.sh build/san unit

# `make bench [PEERS=1] [N=...]`: plain -O2 build (never the sanitizers),
# then bench/run.sh (see docs/performance.md); the providers' and the
# API's benchmarks follow.
bench: deps
	@$(MAKE) --no-print-directory SANITIZER= BUILD=build build/herald \
	    $(BENCH_BIN:$(BUILD)/%=build/%) build/tools/apibench build/tools/jget
	@PEERS=$(PEERS) ./bench/run.sh build

# `make fuzz FUZZ_SECONDS=60`: every harness for that long (make test runs
# each for a few seconds). Crashes land in build/fuzz/crashes/.
fuzz: deps
	@$(MAKE) --no-print-directory FUZZER=1 BUILD=build/fuzz $(FUZZ_BIN)
	@FUZZ_TEST_SECONDS=$(FUZZ_SECONDS) ./tests/run.sh build/san fuzz

# `make bench`: sends per second through the aliyun driver against the
# provider emulator with 1, 16 and 64 in flight; Redis commands per message.

bench-providers: deps
	@$(MAKE) --no-print-directory $(BUILD)/herald $(BUILD)/emulators/provider_emu $(BUILD)/tools/jget
	@./scripts/bench_providers.sh $(BUILD)

# The HTTP API's throughput beside the CLI's enqueue rate (optimised build).
bench-api: deps
	@$(MAKE) --no-print-directory $(BUILD)/herald $(BUILD)/tools/apibench $(BUILD)/tools/jget
	@./scripts/bench_api.sh $(BUILD)

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
