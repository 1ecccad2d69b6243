# libivfpq — GNU make. `make help` lists the targets.
#
# Portable by default: the library is compiled for the baseline of its
# architecture; SIMD kernels live in their own files, compiled with their own
# flags, and are chosen at run time.

VERSION := $(shell sed -n 's/^\#define IVFPQ_VERSION_STRING "\(.*\)"/\1/p' include/ivfpq.h)
MAJOR := $(firstword $(subst ., ,$(VERSION)))

PREFIX ?= /usr/local
prefix ?= $(PREFIX)
LIBDIR ?= $(prefix)/lib
INCLUDEDIR ?= $(prefix)/include
BINDIR ?= $(prefix)/bin
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

CC ?= cc
AR ?= ar
BUILD ?= build
OPT ?= -O2 -g
WERROR ?= -Werror
WARNINGS = -Wall -Wextra $(WERROR) -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wvla -Wformat=2 -Wundef -Wwrite-strings
# -ffp-contract=off: no fused multiply-add, so every SIMD level computes the
# same floats (see src/kernels.h).
BASEFLAGS = -std=c11 $(OPT) $(WARNINGS) -ffp-contract=off -fno-math-errno
LIBFLAGS = $(BASEFLAGS) $(if $(EMBEDDED),$(EMBEDDED_FLAGS),-fPIC) -fvisibility=hidden -DIVFPQ_BUILDING_LIBRARY -Iinclude -Isrc
SAN ?=
ALL_CFLAGS = $(LIBFLAGS) $(SAN) $(CFLAGS) $(CPPFLAGS)

MACHINE := $(shell $(CC) -dumpmachine)
ifneq ($(filter x86_64%,$(MACHINE)),)
  ARCH := x86_64
else ifneq ($(filter aarch64%,$(MACHINE)),)
  ARCH := aarch64
else
  ARCH := other
endif

# Kernels per instruction set: src/<name>_<isa>.c
ISA_SRCS := $(wildcard src/*_sse.c src/*_avx2.c src/*_avx512.c src/*_neon.c)
CORE_SRCS := $(filter-out $(ISA_SRCS),$(wildcard src/*.c))
# hosted-only sources (paths, mmap): not part of embedded builds
HOSTED_SRCS := src/io_file.c
# make EMBEDDED=1: the freestanding core (docs/EMBEDDING.md), libivfpq.a only,
# in its own build directory: no stdio, heap, threads, getenv or time (the
# caller gives an allocator or an arena); sections per function so a
# firmware link keeps only what it calls; no PIC, no stack protector.
EMBEDDED_FLAGS = -DIVFPQ_EMBEDDED -ffunction-sections -fdata-sections -fno-stack-protector
ifdef EMBEDDED
  CORE_SRCS := $(filter-out $(HOSTED_SRCS),$(CORE_SRCS))
  ifeq ($(origin BUILD),file)
    BUILD := build/embedded
  endif
endif
FLAGS_sse = -mssse3 -msse4.1
FLAGS_avx2 = -mavx2
FLAGS_avx512 = -mavx512f -mavx512bw -mavx512vl -mavx512dq
FLAGS_neon =
ifeq ($(ARCH),x86_64)
  ISAS := sse avx2 avx512
else ifeq ($(ARCH),aarch64)
  ISAS := neon
else
  ISAS :=
endif
ifdef SIMD_OFF
  ISAS :=
endif
# an ISA counts as built only when its fastscan and distance files both exist
BUILT_ISAS := $(foreach i,$(ISAS),$(if $(and $(wildcard src/fastscan_$(i).c),$(wildcard src/distance_$(i).c)),$(i)))
LIB_ISA_SRCS := $(foreach i,$(BUILT_ISAS),$(wildcard src/*_$(i).c))
HAVE_DEFS := $(foreach i,$(BUILT_ISAS),-DIVFPQ_HAVE_$(shell echo $(i) | tr a-z A-Z))

LIB_SRCS := $(CORE_SRCS) $(LIB_ISA_SRCS)
LIB_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
STATIC := $(BUILD)/libivfpq.a
SHARED_REAL := $(BUILD)/libivfpq.so.$(VERSION)
SHARED_SONAME := libivfpq.so.$(MAJOR)
SHARED := $(BUILD)/libivfpq.so

# tools shared by demo, bench, CLI and tests
TOOL_SRCS := tools/synth.c tools/vecio.c
TOOL_OBJS := $(patsubst tools/%.c,$(BUILD)/tools/%.o,$(TOOL_SRCS))
TOOL_CFLAGS = $(BASEFLAGS) $(SAN) -Iinclude -Itools $(CFLAGS) $(CPPFLAGS)

# the `ivfpq` command-line tool: tools/ivfpq.c (main) + its parts
CLI_SRCS := tools/cli_util.c tools/gt.c tools/measure.c tools/report.c tools/plot.c tools/bench.c
CLI_OBJS := $(patsubst tools/%.c,$(BUILD)/tools/%.o,$(CLI_SRCS))
# index files need the library's save/load (declared in the header once merged)
CLI_IO := $(if $(shell grep -l 'ivfpq_save_file' include/ivfpq.h 2>/dev/null),-DCLI_HAVE_IO)
CLI := $(BUILD)/ivfpq

TEST_SRCS := $(wildcard tests/test_*.c)
TEST_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
TEST_CFLAGS = $(BASEFLAGS) $(SAN) -Iinclude -Isrc -Itools -Itests $(HAVE_DEFS) $(CFLAGS) $(CPPFLAGS)
TEST_LIBS = -lcmocka -lm -lpthread

.PHONY: all lib cli test test-cli test-be demo io-bench clean install uninstall help check-cmocka \
        run-tests FORCE test-neon neon-deps bench-kernels bench-search bench-rvc

all: $(if $(EMBEDDED),$(STATIC),lib $(CLI) $(BUILD)/demo) ## build the library, the ivfpq tool and the demo

cli: $(CLI) ## build the ivfpq command-line tool

lib: $(STATIC) $(SHARED)

# gcc (12) with partial-redundancy elimination keeps the FastScan
# accumulators in the wrong registers: 8 extra moves in the 26-instruction
# AVX2 loop (kernel 1.2-1.3x slower), 14 in the 42-instruction SSE one
# (1.33x; bench_kernels). clang needs nothing and rejects the flag.
# Library objects depend on this file: a flag changed here rebuilds them.
CC_IS_GCC := $(shell $(CC) --version 2>/dev/null | grep -q 'Free Software Foundation' && echo 1)
ifeq ($(CC_IS_GCC),1)
  FILE_FLAGS_fastscan_avx2 = -fno-tree-pre
  FILE_FLAGS_fastscan_sse = -fno-tree-pre
endif

$(BUILD)/obj/%.o: src/%.c include/ivfpq.h $(wildcard src/*.h) Makefile | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) $(HAVE_DEFS) $(FLAGS_$(lastword $(subst _, ,$*))) $(FILE_FLAGS_$*) -c $< -o $@

# dispatch.c compiles the IVFPQ_HAVE_<ISA> list in: rebuild it when the list
# changes (the stamp is rewritten only then).
$(BUILD)/obj/dispatch.o: $(BUILD)/obj/isas.stamp
$(BUILD)/obj/isas.stamp: FORCE | $(BUILD)/obj
	@echo '$(HAVE_DEFS)' | cmp -s - $@ || echo '$(HAVE_DEFS)' > $@
FORCE:

$(BUILD)/obj $(BUILD)/tools $(BUILD)/tests:
	@mkdir -p $@

$(STATIC): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(SHARED_REAL): $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,$(SHARED_SONAME) $(SAN) $(LDFLAGS) -o $@ $^ -lm

$(SHARED): $(SHARED_REAL)
	ln -sf libivfpq.so.$(VERSION) $(BUILD)/$(SHARED_SONAME)
	ln -sf libivfpq.so.$(VERSION) $@

$(BUILD)/tools/%.o: tools/%.c $(wildcard tools/*.h) include/ivfpq.h | $(BUILD)/tools
	$(CC) $(TOOL_CFLAGS) -c $< -o $@

$(BUILD)/tools/ivfpq.o: tools/ivfpq.c $(wildcard tools/*.h) include/ivfpq.h | $(BUILD)/tools
	$(CC) $(TOOL_CFLAGS) $(CLI_IO) -c $< -o $@

$(CLI): $(BUILD)/tools/ivfpq.o $(CLI_OBJS) $(TOOL_OBJS) $(STATIC)
	$(CC) $(TOOL_CFLAGS) -o $@ $^ $(LDFLAGS) -lm -lpthread

$(BUILD)/demo: bench/demo.c $(TOOL_OBJS) $(STATIC)
	$(CC) $(TOOL_CFLAGS) -o $@ $< $(TOOL_OBJS) $(STATIC) $(LDFLAGS) -lm

demo: $(BUILD)/demo ## synthetic RVC-like set, IVF1024,PQ128x4fs,RFlat, nprobe sweep
	./$(BUILD)/demo

# index file load speed (copy vs zero-copy); uses internal CRC entry points
$(BUILD)/io_bench: bench/io_bench.c $(TOOL_OBJS) $(STATIC)
	$(CC) $(TOOL_CFLAGS) -Isrc -o $@ $< $(TOOL_OBJS) $(STATIC) $(LDFLAGS) -lm

IO_BENCH_FILE ?= /tmp/ivfpq-io-bench.index
io-bench: $(BUILD)/io_bench ## load speed of a ~220 MB IVF1024,PQ128x4fs,RFlat index file
	test -f $(IO_BENCH_FILE) || ./$(BUILD)/io_bench build $(IO_BENCH_FILE)
	./$(BUILD)/io_bench time $(IO_BENCH_FILE)

# ------------------------------------------------------------------ tests
CMOCKA_PROBE = printf '\#include <stdarg.h>\n\#include <stddef.h>\n\#include <setjmp.h>\n\#include <stdint.h>\n\#include <cmocka.h>\nint main(void){return 0;}\n' | $(CC) $(CFLAGS) -x c - -o /dev/null $(LDFLAGS) -lcmocka >/dev/null 2>&1

check-cmocka:
	@if ! $(CMOCKA_PROBE); then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "cmocka missing: installing libcmocka-dev with apt-get" >&2; \
	    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libcmocka-dev) >&2 || exit 1; \
	  else \
	    echo "make test needs cmocka: install it (Debian/Ubuntu: sudo apt-get install libcmocka-dev)" >&2; exit 1; \
	  fi; \
	fi

$(BUILD)/tests/%: tests/%.c tests/testutil.c tests/testutil.h $(TOOL_OBJS) $(STATIC) | $(BUILD)/tests check-cmocka
	$(CC) $(TEST_CFLAGS) -o $@ $< tests/testutil.c $(TOOL_OBJS) $(STATIC) $(LDFLAGS) $(TEST_LIBS)

# Levels of this CPU, as the library sees them.
$(BUILD)/tests/simd_levels: tests/simd_levels.c $(STATIC) | $(BUILD)/tests
	$(CC) $(TEST_CFLAGS) -o $@ $< $(STATIC) -lm

FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAYS := $(addprefix $(BUILD)/fuzz/replay_,$(FUZZ_TARGETS))
# faiss interoperability (tests/faiss_interop.py) when Debian's faiss is there
PYTHON_FAISS ?= /usr/bin/python3
$(BUILD)/tests/io_tool: tests/io_tool.c $(TOOL_OBJS) $(STATIC) | $(BUILD)/tests
	$(CC) $(TEST_CFLAGS) -o $@ $< $(TOOL_OBJS) $(STATIC) $(LDFLAGS) -lm

# Index files on a big-endian host: the library cross-built for s390x runs
# under qemu-user on files written here (Debian: gcc-s390x-linux-gnu qemu-user).
BE_CC ?= s390x-linux-gnu-gcc
BE_RUN ?= qemu-s390x
# GCC evaluates float expressions in double on s390x with -std=c11
# (FLT_EVAL_METHOD 1): native float arithmetic, as on x86-64 and ARM
BE_CFLAGS ?= -fexcess-precision=fast
BE_BUILD := $(BUILD)/be
BE_SPECS := Flat IVF8,Flat PQ8x4fs PQ3x4fs,RFlat IVF8,PQ8x4fs IVF8,PQ3x4fsr,RFlat IVF8,PQ8x4fsr,RFlat
test-be: $(BUILD)/tests/io_tool ## index files on big-endian s390x (cross gcc + qemu-user)
	$(MAKE) --no-print-directory BUILD=$(BE_BUILD) CC=$(BE_CC) SIMD_OFF=1 CFLAGS="$(BE_CFLAGS)" $(BE_BUILD)/libivfpq.a
	$(BE_CC) $(BASEFLAGS) $(BE_CFLAGS) -static -Iinclude -o $(BE_BUILD)/endian_check tests/endian_check.c $(BE_BUILD)/libivfpq.a -lm
	@set -e; dir=$(BE_BUILD)/data; mkdir -p $$dir; cp tests/data/*.index tests/data/*.expect $$dir/; \
	t=./$(BUILD)/tests/io_tool; $$t synth 3000 24 7 $$dir/xb.f32; $$t synth 20 24 8 $$dir/be_queries.f32; \
	i=0; names=; for spec in $(BE_SPECS); do for metric in 0 1; do \
	  n=be$$i; i=$$((i+1)); names="$$names $$n"; \
	  $$t build $$spec $$metric $$dir/xb.f32 3000 24 $$dir/$$n.native native; \
	  $$t search $$dir/$$n.native $$dir/be_queries.f32 20 10 4 4 $$dir/$$n.results; \
	done; done; \
	$(BE_RUN) $(BE_BUILD)/endian_check $$dir $$names

# RUN prefixes every test program (e.g. an emulator, see test-neon);
# TEST_SKIP names test programs not to run (e.g. test_threads under qemu).
RUN ?=
TEST_SKIP ?=
TEST_RUN_BINS = $(filter-out $(addprefix $(BUILD)/tests/,$(TEST_SKIP)),$(TEST_BINS))
test: check-cmocka $(TEST_BINS) $(SHARED) $(BUILD)/tests/simd_levels $(BUILD)/tests/io_tool $(FUZZ_REPLAYS) $(CLI) $(BUILD)/tests/cli_check ## unit tests at every SIMD level, faiss interop, fuzz corpus replay, CLI tests (once)
	@set -e; levels=$$($(RUN) $(BUILD)/tests/simd_levels); \
	[ -n "$$levels" ] || { echo "FAILED: $(BUILD)/tests/simd_levels listed no level"; exit 1; }; \
	for lvl in $$levels; do \
	  echo "== SIMD level $$lvl"; \
	  for t in $(TEST_RUN_BINS); do IVFPQ_SIMD=$$lvl $(RUN) $$t || { echo "FAILED: $$t (IVFPQ_SIMD=$$lvl)"; exit 1; }; done; \
	done
	@if [ -z "$(RUN)" ] && $(PYTHON_FAISS) -c "import faiss, numpy" >/dev/null 2>&1; then \
	  echo "== faiss interop"; $(PYTHON_FAISS) tests/faiss_interop.py $(BUILD)/tests/io_tool || exit 1; \
	else \
	  echo "== faiss interop SKIPPED: $(PYTHON_FAISS) cannot import faiss (apt-get install python3-faiss python3-numpy)"; \
	fi
	@$(MAKE) --no-print-directory test-python
	@$(MAKE) --no-print-directory fuzz-replay
	@if [ -z "$(RUN)" ]; then echo "== command-line tool"; sh tests/cli_test.sh $(BUILD) || { echo "FAILED: tests/cli_test.sh"; exit 1; }; fi
	@if [ -z "$(RUN)" ]; then echo "== embedded core and example"; $(MAKE) --no-print-directory examples || { echo "FAILED: make examples"; exit 1; }; fi
	@echo "all tests passed"

# ------------------------------------------------------------------ fuzzing
# Targets are tests/fuzz/fuzz_<name>.c (LLVMFuzzerTestOneInput). `make test`
# replays the saved corpus and past crashes (tests/fuzz/{corpus,crashes}/<name>)
# through them with any compiler; `make fuzz` runs libFuzzer (clang).
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all

$(BUILD)/fuzz:
	@mkdir -p $@

$(BUILD)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(TOOL_OBJS) $(STATIC) | $(BUILD)/fuzz
	$(CC) $(TEST_CFLAGS) -o $@ $< tests/fuzz/replay.c $(TOOL_OBJS) $(STATIC) $(LDFLAGS) -lm

.PHONY: fuzz-replay fuzz
fuzz-replay: $(FUZZ_REPLAYS) ## replay the fuzz corpus and past crashes
	@set -e; for t in $(FUZZ_TARGETS); do printf '%s: ' "$$t"; \
	  $(RUN) $(BUILD)/fuzz/replay_$$t tests/fuzz/corpus/$$t tests/fuzz/crashes/$$t; done

fuzz: ## run each libFuzzer target for FUZZ_SECONDS (clang)
	$(MAKE) BUILD=$(BUILD)/libfuzzer CC=$(FUZZ_CC) SAN="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" lib $(TOOL_OBJS:$(BUILD)/%=$(BUILD)/libfuzzer/%)
	@mkdir -p $(BUILD)/fuzz
	@set -e; failed=; for t in $(FUZZ_TARGETS); do \
	  $(FUZZ_CC) $(TEST_CFLAGS) -fsanitize=fuzzer $(FUZZ_SAN) -o $(BUILD)/fuzz/fuzz_$$t tests/fuzz/fuzz_$$t.c \
	    $(TOOL_OBJS:$(BUILD)/%=$(BUILD)/libfuzzer/%) $(BUILD)/libfuzzer/libivfpq.a -lm; \
	  mkdir -p $(BUILD)/fuzz/corpus-$$t tests/fuzz/crashes/$$t; \
	  dict=; [ -f tests/fuzz/$$t.dict ] && dict=-dict=tests/fuzz/$$t.dict; \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  ./$(BUILD)/fuzz/fuzz_$$t $$dict -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=tests/fuzz/crashes/$$t/ $(BUILD)/fuzz/corpus-$$t tests/fuzz/corpus/$$t \
	    > $(BUILD)/fuzz/$$t.log 2>&1 || { failed="$$failed $$t"; tail -n 40 $(BUILD)/fuzz/$$t.log; \
	      echo "   CRASH: see $(BUILD)/fuzz/$$t.log and tests/fuzz/crashes/$$t/"; }; \
	  grep -E '^(stat::(number_of_executed_units|average_exec_per_sec|new_units_added)|#[0-9]+[[:space:]]+DONE|==[0-9]+==ERROR|SUMMARY)' \
	    $(BUILD)/fuzz/$$t.log || true; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crash in:$$failed"; exit 1; fi

# ------------------------------------------------------------ sanitizers
.PHONY: asan tsan valgrind
ASAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

asan: ## the test suite under AddressSanitizer + UndefinedBehaviorSanitizer
	$(MAKE) BUILD=$(BUILD)/asan SAN="$(ASAN_FLAGS)" test

tsan: ## the threaded tests under ThreadSanitizer, at every SIMD level
	$(MAKE) BUILD=$(BUILD)/tsan SAN="-fsanitize=thread" $(BUILD)/tsan/tests/test_threads $(BUILD)/tsan/tests/simd_levels
	@set -e; for lvl in $$(./$(BUILD)/tsan/tests/simd_levels); do \
	  echo "== tsan, SIMD level $$lvl"; IVFPQ_SIMD=$$lvl ./$(BUILD)/tsan/tests/test_threads; done

# valgrind cannot run AVX-512 code: cap the level there
VALGRIND_SIMD ?= avx2
VALGRIND = valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible
valgrind: check-cmocka $(TEST_BINS) ## the test suite under valgrind memcheck
	@set -e; for t in $(TEST_BINS); do echo "== valgrind $$t"; \
	  IVFPQ_SIMD=$(VALGRIND_SIMD) $(VALGRIND) $$t >/dev/null || { echo "FAILED under valgrind: $$t"; exit 1; }; done; \
	  echo "valgrind: clean"

# ------------------------------------------------------- aarch64 / NEON
# make test-neon: cross-builds the library and the tests for aarch64 into
# build-aarch64/ and runs them (scalar and neon levels) under qemu-user.
# Needs, on Debian/Ubuntu (installed here with apt-get when run as root):
#   dpkg --add-architecture arm64 && apt-get update
#   apt-get install gcc-aarch64-linux-gnu qemu-user libcmocka-dev:arm64
# cmocka.h is architecture-independent (/usr/include, searched after the
# cross sysroot); the arm64 libcmocka is in /usr/lib/aarch64-linux-gnu,
# which qemu finds through the binary's rpath.
NEON_CC ?= aarch64-linux-gnu-gcc
NEON_AR ?= aarch64-linux-gnu-ar
NEON_SYSROOT ?= /usr/aarch64-linux-gnu
NEON_LIBDIR ?= /usr/lib/aarch64-linux-gnu
NEON_QEMU ?= qemu-aarch64
NEON_BUILD ?= build-aarch64

neon-deps:
	@if ! command -v $(NEON_CC) >/dev/null 2>&1 || ! command -v $(NEON_QEMU) >/dev/null 2>&1 || \
	    ! [ -e $(NEON_LIBDIR)/libcmocka.so ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "test-neon: installing the aarch64 cross toolchain, qemu-user and libcmocka-dev:arm64" >&2; \
	    (dpkg --add-architecture arm64 && apt-get update -q && \
	     DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc-aarch64-linux-gnu qemu-user \
	       libcmocka-dev:arm64) >&2 || exit 1; \
	  else \
	    echo "test-neon needs gcc-aarch64-linux-gnu, qemu-user and libcmocka-dev:arm64 (see Makefile)" >&2; \
	    exit 1; \
	  fi; \
	fi

# (test_threads is skipped: threads under qemu-user take tens of minutes and
# test nothing NEON-specific; it runs natively at every x86 level and in tsan)
test-neon: neon-deps ## cross-build for aarch64 and run the tests under qemu
	$(MAKE) test BUILD=$(NEON_BUILD) CC=$(NEON_CC) AR=$(NEON_AR) \
	  CFLAGS="-idirafter /usr/include" \
	  LDFLAGS="-L$(NEON_LIBDIR) -Wl,-rpath,$(NEON_LIBDIR)" \
	  RUN="$(NEON_QEMU) -L $(NEON_SYSROOT)" TEST_SKIP="test_threads"

test-cli: $(CLI) $(BUILD)/tests/cli_check ## only the command-line tool's tests
	sh tests/cli_test.sh $(BUILD)

# helper of tests/cli_test.sh: brute force, JSON and file checks in C
$(BUILD)/tests/cli_check: tests/cli_check.c $(CLI_OBJS) $(TOOL_OBJS) $(STATIC) | $(BUILD)/tests
	$(CC) $(TEST_CFLAGS) -o $@ $^ $(LDFLAGS) -lm -lpthread

# ---------------------------------------------------------------- install
$(BUILD)/libivfpq.pc: libivfpq.pc.in include/ivfpq.h | $(BUILD)/obj
	sed -e 's|@PREFIX@|$(prefix)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' $< > $@

install: lib $(CLI) $(BUILD)/libivfpq.pc ## install PREFIX=/usr/local DESTDIR= (BINDIR for the tool)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(BINDIR)
	install -m 755 $(CLI) $(DESTDIR)$(BINDIR)/
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED_REAL) $(DESTDIR)$(LIBDIR)/
	ln -sf libivfpq.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SHARED_SONAME)
	ln -sf libivfpq.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libivfpq.so
	install -m 644 include/ivfpq.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(BUILD)/libivfpq.pc $(DESTDIR)$(PKGCONFIGDIR)/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ivfpq $(DESTDIR)$(LIBDIR)/libivfpq.a $(DESTDIR)$(LIBDIR)/libivfpq.so* \
	      $(DESTDIR)$(INCLUDEDIR)/ivfpq.h $(DESTDIR)$(PKGCONFIGDIR)/libivfpq.pc

clean: ## remove build/ (and the aarch64 build)
	rm -rf $(BUILD) $(NEON_BUILD)

help: ## this list
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

# ---------------------------------------------------------------- benchmarks
BENCH_CFLAGS = $(BASEFLAGS) -Iinclude -Isrc -Itools $(CFLAGS) $(CPPFLAGS)

$(BUILD)/bench_kernels: bench/bench_kernels.c $(TOOL_OBJS) $(STATIC)
	$(CC) $(BENCH_CFLAGS) -o $@ $< $(TOOL_OBJS) $(STATIC) $(LDFLAGS) -lm

bench-kernels: $(BUILD)/bench_kernels ## kernel speed per SIMD level (see bench/RESULTS.md)
	./$(BUILD)/bench_kernels

$(BUILD)/bench_search: bench/bench_search.c $(TOOL_OBJS) $(STATIC)
	$(CC) $(BENCH_CFLAGS) -o $@ $< $(TOOL_OBJS) $(STATIC) $(LDFLAGS) -lm

BENCH_DATA ?= /tmp/ivfpq-data/synth-256
bench-search: $(BUILD)/bench_search ## end-to-end QPS/recall per SIMD level on BENCH_DATA
	./$(BUILD)/bench_search --data $(BENCH_DATA)

# ---------------------------------------------------------- embedded profile
# docs/EMBEDDING.md. `make EMBEDDED=1` builds the freestanding core alone;
# these targets build it under $(BUILD)/embedded*, check what it links
# against (tests/embedded_check.sh), cross-build it and run the example.
NM ?= nm
EMB := $(BUILD)/embedded
EX := $(BUILD)/examples
M7_CC ?= arm-none-eabi-gcc
M7_FLAGS ?= -mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16
A64_CC ?= aarch64-linux-gnu-gcc
# outline atomics need libgcc's LSE probe, which needs getauxval (Linux):
# a bare-metal core uses inline atomics
A64_FLAGS ?= -mno-outline-atomics
# make-embedded BUILD-DIR CC AR CFLAGS [more make arguments]
define make-embedded
$(MAKE) --no-print-directory EMBEDDED=1 SAN= BUILD=$(1) CC=$(2) AR=$(3) CFLAGS="$(4)" $(5) $(1)/libivfpq.a
endef

.PHONY: embedded embedded-check embedded-cross embedded-size examples

embedded: ## the freestanding core (what make EMBEDDED=1 builds) in $(BUILD)/embedded
	+@$(call make-embedded,$(EMB),$(CC),$(AR),$(CFLAGS))

embedded-check: embedded ## fail if the embedded archive needs anything beyond the allow-list (nm -u)
	@sh tests/embedded_check.sh $(NM) $(EMB)/libivfpq.a

embedded-cross: ## the core for aarch64 and Cortex-M7 (scalar): build, check, size; link the example for M7
	+@$(call make-embedded,$(BUILD)/embedded-aarch64,$(A64_CC),aarch64-linux-gnu-ar,$(A64_FLAGS))
	@sh tests/embedded_check.sh aarch64-linux-gnu-nm $(BUILD)/embedded-aarch64/libivfpq.a
	+@$(call make-embedded,$(BUILD)/embedded-m7,$(M7_CC),arm-none-eabi-ar,$(M7_FLAGS))
	@sh tests/embedded_check.sh arm-none-eabi-nm $(BUILD)/embedded-m7/libivfpq.a
	@$(MAKE) --no-print-directory $(EX)/example_index.c
	$(M7_CC) $(BASEFLAGS) $(M7_FLAGS) -DEXAMPLE_BARE $(EMBEDDED_FLAGS) -Iinclude -Iexamples \
	  -o $(EX)/search_const.m7.elf examples/search_const.c $(EX)/example_index.c \
	  $(BUILD)/embedded-m7/libivfpq.a --specs=nosys.specs -Wl,--gc-sections
	@echo "== size: aarch64 archive, cortex-m7 archive, cortex-m7 example (43 KB of it is the index)"
	@aarch64-linux-gnu-size -t $(BUILD)/embedded-aarch64/libivfpq.a | tail -1
	@arm-none-eabi-size -t $(BUILD)/embedded-m7/libivfpq.a | tail -1
	@arm-none-eabi-size $(EX)/search_const.m7.elf | tail -1
	@arm-none-eabi-nm --defined-only $(BUILD)/embedded-m7/libivfpq.a > $(EX)/m7-lib.syms
	@arm-none-eabi-nm -S --radix=d --defined-only $(EX)/search_const.m7.elf | \
	  awk 'NR == FNR { if (NF == 3) lib[$$3] = 1; next } ($$3 ~ /[tTrR]/ && $$4 in lib) { n += $$2 + 0 } \
	       END { printf "library code and constants linked into the example: %d bytes\n", n }' \
	  $(EX)/m7-lib.syms -

embedded-size: ## archive size (text+data+bss) per target, scalar only and with SIMD
	@set -e; printf '%-26s %8s %8s %8s\n' configuration text data bss; \
	for c in "x86-64-scalar $(CC) $(AR) size SIMD_OFF=1" "x86-64-simd $(CC) $(AR) size" \
	         "aarch64-scalar $(A64_CC) aarch64-linux-gnu-ar aarch64-linux-gnu-size SIMD_OFF=1" \
	         "aarch64-neon $(A64_CC) aarch64-linux-gnu-ar aarch64-linux-gnu-size" \
	         "cortex-m7-scalar $(M7_CC) arm-none-eabi-ar arm-none-eabi-size" \
	         "cortex-m7-nofaiss $(M7_CC) arm-none-eabi-ar arm-none-eabi-size"; do \
	  set -- $$c; name=$$1 cc=$$2 ar=$$3 sz=$$4; shift 4; \
	  case $$name in aarch64*) fl="$(A64_FLAGS)";; *nofaiss) fl="$(M7_FLAGS) -DIVFPQ_NO_FAISS";; \
	    cortex*) fl="$(M7_FLAGS)";; *) fl=;; esac; \
	  $(MAKE) --no-print-directory -s EMBEDDED=1 SAN= BUILD=$(BUILD)/size-$$name CC=$$cc AR=$$ar \
	    CFLAGS="$$fl" "$$@" $(BUILD)/size-$$name/libivfpq.a >/dev/null; \
	  $$sz -t $(BUILD)/size-$$name/libivfpq.a | tail -1 | \
	    awk -v n=$$name '{ printf "%-26s %8s %8s %8s\n", n, $$1, $$2, $$3 }'; \
	done

$(EX):
	@mkdir -p $@

# host tool: a tiny index as C source (const array + queries + expected results)
$(EX)/gen_index: examples/gen_index.c examples/example.h $(STATIC) | $(EX)
	$(CC) $(TOOL_CFLAGS) -Iexamples -o $@ $< $(STATIC) $(LDFLAGS) -lm

$(EX)/example_index.c: $(EX)/gen_index
	$(EX)/gen_index $@

examples: embedded-check $(EX)/example_index.c ## search a const-array index with no heap, on the embedded core
	$(CC) $(BASEFLAGS) $(EMBEDDED_FLAGS) -Iinclude -Iexamples -o $(EX)/search_const \
	  examples/search_const.c $(EX)/example_index.c $(EMB)/libivfpq.a
	$(EX)/search_const

# Worst-case stack of each entry point (sum of frames along the deepest call
# chain, GCC -fcallgraph-info=su): the embedded core on this host (every SIMD
# level's kernels counted) and on Cortex-M7.
STACK_ENTRIES ?= ivfpq_search_ws ivfpq_search ivfpq_search_blend_ws ivfpq_search_blend \
  ivfpq_search_workspace_size ivfpq_load_from_buffer \
  ivfpq_load_from_buffer~native_load_copy~ivfpq__faiss_load ivfpq_load_static \
  ivfpq_footprint_of ivfpq_index_factory ivfpq_train ivfpq_add ivfpq_save ivfpq_free
.PHONY: stack-report
stack-report: ## worst-case stack use per entry point (host and Cortex-M7 embedded builds)
	+@$(call make-embedded,$(BUILD)/stack-host,$(CC),$(AR),-fcallgraph-info=su)
	@echo "== stack, embedded core, $(MACHINE) (bytes)"
	@python3 tests/stack_report.py $(BUILD)/stack-host/obj $(STACK_ENTRIES)
	+@$(call make-embedded,$(BUILD)/stack-m7,$(M7_CC),arm-none-eabi-ar,$(M7_FLAGS) -fcallgraph-info=su)
	@echo "== stack, embedded core, cortex-m7 (bytes)"
	@python3 tests/stack_report.py $(BUILD)/stack-m7/obj $(STACK_ENTRIES)

# RVC's retrieval step (issue 8): chunk latency and 8-NN recall, see bench/RESULTS.md
$(BUILD)/bench_rvc: bench/bench_rvc.c $(TOOL_OBJS) $(STATIC)
	$(CC) $(BENCH_CFLAGS) -o $@ $< $(TOOL_OBJS) $(STATIC) $(LDFLAGS) -lm

BENCH_RVC_ARGS ?=
bench-rvc: $(BUILD)/bench_rvc ## RVC chunk latency + recall, N = 50k/200k/1M, d = 256/768 (long: see bench/RESULTS.md)
	nice ./$(BUILD)/bench_rvc $(BENCH_RVC_ARGS)

# The Python module (python/ivfpq) over this build's libivfpq.so; skipped for
# cross builds (RUN) and sanitizer builds (the interpreter cannot load them).
.PHONY: test-python
test-python: $(SHARED) ## the Python module's tests (tests/python, numpy; faiss parts when installed)
	@if [ -n "$(RUN)$(SAN)" ]; then \
	  echo "== python module SKIPPED: cross or sanitizer build"; \
	elif $(PYTHON_FAISS) -c "import numpy" >/dev/null 2>&1; then \
	  echo "== python module"; \
	  PYTHONPATH=python IVFPQ_LIBRARY=$(abspath $(SHARED)) $(PYTHON_FAISS) -m unittest discover -s tests/python || exit 1; \
	else \
	  echo "== python module SKIPPED: $(PYTHON_FAISS) cannot import numpy (Debian: apt-get install python3-numpy)"; \
	fi

# the worked example of docs/EMBEDDING.md: memory figures and one-query latency
$(BUILD)/embedded_bench: bench/embedded_bench.c $(TOOL_OBJS) $(STATIC)
	$(CC) $(BENCH_CFLAGS) -o $@ $< $(TOOL_OBJS) $(STATIC) $(LDFLAGS) -lm

.PHONY: bench-embedded
bench-embedded: $(BUILD)/embedded_bench ## 65,536 x 256-d IVF1024,PQ128x4fs: bytes and one-query latency
	./$(BUILD)/embedded_bench

# ------------------------------------------------------------- coverage
# Line coverage of src/ by `make test` (unit tests at every SIMD level,
# fuzz corpus replay, faiss interop, CLI tests): gcc --coverage at -Og (-O0
# would leave sqrtf calls the freestanding example does not link),
# then gcov; prints each file's line % and the total (docs/TESTING.md).
COV_BUILD := $(BUILD)/cov
.PHONY: coverage
coverage: ## line coverage of src/ by the test suite (gcc --coverage + gcov)
	@mkdir -p $(COV_BUILD)/obj
	@find $(COV_BUILD) -name '*.gcda' -delete
	$(MAKE) --no-print-directory BUILD=$(COV_BUILD) CC=gcc OPT="-Og -g" SAN="--coverage" test >$(COV_BUILD)/test.log 2>&1 || \
	  { tail -n 30 $(COV_BUILD)/test.log; exit 1; }
	@gcov -n -o $(COV_BUILD)/obj $(LIB_SRCS) 2>/dev/null | awk ' \
	  /^File / { f = $$2; gsub("\047", "", f); next } \
	  /^Lines executed:/ && f ~ /^src\// && !(f in seen) { seen[f] = 1; \
	    split($$2, a, ":"); pct = a[2] + 0; n = $$4; hit = pct * n / 100; \
	    printf "  %-28s %6.1f%% of %5d lines\n", f, pct, n; T += n; H += hit } \
	  END { printf "src/ total: %.1f%% of %d lines\n", 100 * H / T, T }'
