# digits / libnn — plain Makefile.
#   make              library, tool (build/digits)
#   make test         cmocka unit tests + CLI tests (real-MNIST test if data present)
#   make sanitize     the same tests built with ASan + UBSan (in build-asan/)
#   make check        all of CI: gcc, clang, no-BLAS and sanitizer builds, -Werror,
#                     and the browser test of digits serve (make browser-test)
#   make bench        benchmarks (bench/README.md)
#   make fuzz         libFuzzer targets in build-fuzz/fuzzers (fuzz/README.md)
#   make valgrind     the unit tests under valgrind memcheck (in build-vg/)
#   make install PREFIX=/usr/local
# Variables: BLAS=openblas|none (default: openblas when pkg-config finds it),
#            OPENMP=1|0, O=build folder, WERROR=1, SAN=1,
#            MPI=1|0 (data-parallel `digits train` under mpirun; default:
#            1 when pkg-config finds Open MPI; docs/distributed.md).

CC      ?= cc
PREFIX  ?= /usr/local
O       ?= build
OPENMP  ?= 1
PKG_CONFIG ?= pkg-config

ifeq ($(origin BLAS),undefined)
  BLAS := $(shell $(PKG_CONFIG) --exists openblas 2>/dev/null && echo openblas || echo none)
endif

# The version, written once (nn.h); nn.pc and `digits --version` use it.
VERSION := $(shell sed -n 's/^\#define NN_VERSION_STRING "\(.*\)"/\1/p' include/nn.h)

# CFLAGS / LDFLAGS are the user's (make CFLAGS=-O3 replaces only these);
# what the build needs is in NN_CFLAGS / NN_CPPFLAGS / NN_LDFLAGS, out of
# their reach. -ffp-contract=off: no fused multiply-adds (clang fuses by
# default), so gcc and clang builds add and multiply as the source says,
# which the bit-identity claims (NN_CLONES, docs/design.md) rest on.
CFLAGS  ?= -O2 -g
NN_CFLAGS := -std=c11 -fno-math-errno -ffp-contract=off -Wall -Wextra \
  -Wshadow -Wstrict-prototypes -MMD -MP
NN_CPPFLAGS := -Iinclude -Isrc -D_POSIX_C_SOURCE=200809L
NN_LDFLAGS :=
LDLIBS  += -lstb -lz -lm

ifeq ($(WERROR),1)
  NN_CFLAGS += -Werror
endif
ifeq ($(SAN),1)
  NN_CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  NN_LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(FUZZ),1)
  NN_CFLAGS += -fsanitize=fuzzer-no-link -Wno-pass-failed
endif
ifeq ($(OPENMP),1)
  NN_CFLAGS  += -fopenmp
  NN_LDFLAGS += -fopenmp
else
  NN_CFLAGS  += -fopenmp-simd
endif
ifeq ($(BLAS),openblas)
  NN_CPPFLAGS += -DNN_USE_CBLAS $(shell $(PKG_CONFIG) --cflags openblas)
  LDLIBS   += $(shell $(PKG_CONFIG) --libs openblas)
  PC_REQUIRES = openblas zlib libprotobuf-c
else
  PC_REQUIRES = zlib libprotobuf-c
endif

# ONNX (src/onnx): ONNX's own onnx.proto, from Debian's python3-onnx,
# compiled by protoc-c into $(O)/gen at build time (scripts/install-deps).
ONNX_PROTO ?= $(firstword $(wildcard /usr/lib/python3/dist-packages/onnx/onnx.proto) \
  $(shell dpkg -L python3-onnx 2>/dev/null | grep '/onnx\.proto$$'))
PROTOC_C ?= protoc-c
NN_CPPFLAGS += -I$(O)/gen
LDLIBS   += $(shell $(PKG_CONFIG) --libs libprotobuf-c 2>/dev/null || echo -lprotobuf-c)

# MPI: only the tool's src/cli/mpi.c includes <mpi.h>; libnn never does.
ifeq ($(origin MPI),undefined)
  MPI := $(shell $(PKG_CONFIG) --exists ompi-c 2>/dev/null && echo 1 || echo 0)
endif
ifeq ($(MPI),1)
  MPI_CFLAGS := -DDIGITS_MPI $(shell $(PKG_CONFIG) --cflags ompi-c)
  MPI_LIBS   := $(shell $(PKG_CONFIG) --libs ompi-c)
endif

LIB_SRC  := $(sort $(wildcard src/nn/*.c src/data/*.c src/onnx/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(O)/%.o) $(O)/gen/onnx.pb-c.o
CLI_OBJ  := $(CLI_SRC:%.c=$(O)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(O)/tests/%)
TEST_UTIL_OBJ := $(patsubst %.c,$(O)/%.o,$(wildcard tests/util/*.c))
# Fuzz targets (fuzz/fuzz_*.c): libFuzzer programs in $(O)/fuzzers with
# `make fuzz`; in every build also plain replay programs ($(O)/replay/*)
# that run the same entry point over fuzz/seeds and fuzz/regress.
FUZZ_TARGETS := $(patsubst fuzz/fuzz_%.c,%,$(sort $(wildcard fuzz/fuzz_*.c)))
REPLAY_BIN := $(FUZZ_TARGETS:%=$(O)/replay/%)
FUZZ_OBJ := $(FUZZ_TARGETS:%=$(O)/fuzz/fuzz_%.o) $(O)/fuzz/replay.o
FUZZ_CC ?= clang
# valgrind for `make valgrind` (VALGRIND is prefixed to each unit test)
VALGRIND_CMD := valgrind -q --error-exitcode=1 --leak-check=full \
  --errors-for-leak-kinds=definite,indirect,possible --track-fds=no

# The programs in tools/ and bench/ (scripts/make-user-digits, bench/run.sh).
TOOL_BIN := $(O)/tools/user-digits $(O)/bench/infer $(O)/bench/sgemm \
  $(O)/bench/int8 $(O)/bench/prep

.PHONY: all tools test unit-test unit-test-kernels cli-test sanitize check \
        bench install uninstall clean fuzz fuzz-seeds valgrind browser-test \
        FORCE

all: $(O)/libnn.a $(O)/digits

tools: $(TOOL_BIN)

ALL_CFLAGS = $(NN_CFLAGS) $(CFLAGS)
ALL_CPPFLAGS = $(NN_CPPFLAGS) $(CPPFLAGS)
ALL_LDFLAGS = $(NN_LDFLAGS) $(LDFLAGS)

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

# export_c.c embeds plan_kernels.h as a string (the kernels of exported C).
$(O)/gen/plan_kernels.inc: src/nn/plan_kernels.h
	@mkdir -p $(dir $@)
	sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $< >$@
$(O)/src/nn/export_c.o: $(O)/gen/plan_kernels.inc
$(O)/src/nn/export_c.o: CPPFLAGS += -I$(O)/gen
$(O)/gen/onnx.pb-c.c: $(ONNX_PROTO)
	@test -n "$(ONNX_PROTO)" || { echo "onnx.proto not found: run scripts/install-deps (python3-onnx)" >&2; exit 1; }
	@mkdir -p $(dir $@)
	cp $(ONNX_PROTO) $(O)/gen/onnx.proto
	cd $(O)/gen && $(PROTOC_C) --c_out=. onnx.proto
$(O)/gen/onnx.pb-c.h: $(O)/gen/onnx.pb-c.c
$(O)/gen/onnx.pb-c.o: $(O)/gen/onnx.pb-c.c
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@
$(O)/src/onnx/%.o: src/onnx/%.c $(O)/gen/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(O)/libnn.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# digits serve: libmicrohttpd, and the page (web/index.html) compiled in as
# a C array with the CSP hashes of its script and style (web/embed.sh).
SERVE_LIBS := $(shell $(PKG_CONFIG) --libs libmicrohttpd) -lpthread
WEB_OBJ := $(O)/web/page.o
$(O)/web/page.c: web/index.html web/embed.sh
	@mkdir -p $(dir $@)
	sh web/embed.sh web/index.html >$@.tmp && mv $@.tmp $@
$(O)/web/page.o: $(O)/web/page.c
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(O)/digits: $(CLI_OBJ) $(WEB_OBJ) $(O)/libnn.a
	$(CC) $(ALL_LDFLAGS) $(CLI_OBJ) $(WEB_OBJ) $(O)/libnn.a $(LDLIBS) $(SERVE_LIBS) $(MPI_LIBS) -o $@

# mpi.o is rebuilt when MPI changes (the value is kept in $(O)/mpi.flag).
$(O)/src/cli/mpi.o: CPPFLAGS += $(MPI_CFLAGS)
$(O)/src/cli/mpi.o: $(O)/mpi.flag
$(O)/mpi.flag: FORCE
	@mkdir -p $(dir $@)
	@echo "$(MPI)" | cmp -s - $@ || echo "$(MPI)" > $@

$(O)/tests/%: $(O)/tests/%.o $(TEST_UTIL_OBJ) $(O)/libnn.a
	$(CC) $(ALL_LDFLAGS) $< $(TEST_UTIL_OBJ) $(O)/libnn.a $(LDLIBS) -lcmocka -o $@

# test_predict_alloc counts libnn's own calls to malloc, calloc and realloc.
$(O)/tests/test_predict_alloc: $(O)/tests/test_predict_alloc.o $(TEST_UTIL_OBJ) $(O)/libnn.a
	$(CC) $(ALL_LDFLAGS) -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc $< \
	  $(TEST_UTIL_OBJ) $(O)/libnn.a $(LDLIBS) -lcmocka -o $@

$(O)/replay/%: $(O)/fuzz/fuzz_%.o $(O)/fuzz/replay.o $(O)/libnn.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ $(LDLIBS) -o $@

$(O)/fuzzers/%: $(O)/fuzz/fuzz_%.o $(O)/libnn.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -fsanitize=fuzzer $^ $(LDLIBS) -o $@

$(O)/tests/cli/save_loop: $(O)/tests/cli/save_loop.o $(O)/libnn.a
	$(CC) $(ALL_LDFLAGS) $^ $(LDLIBS) -o $@

$(O)/tests/cli/digit_png: $(O)/tests/cli/digit_png.o $(O)/libnn.a
	$(CC) $(ALL_LDFLAGS) $^ $(LDLIBS) -o $@

$(O)/tests/onnx/onnx_probs: $(O)/tests/onnx/onnx_probs.o $(O)/libnn.a
	$(CC) $(ALL_LDFLAGS) $^ $(LDLIBS) -o $@

$(O)/tests/cli/model_diff: $(O)/tests/cli/model_diff.o $(O)/libnn.a
	$(CC) $(ALL_LDFLAGS) $^ $(LDLIBS) -o $@

$(O)/fuzz/mkseeds: $(O)/fuzz/mkseeds.o $(O)/libnn.a
	$(CC) $(ALL_LDFLAGS) $^ $(LDLIBS) -o $@

$(O)/tools/%: $(O)/tools/%.o $(O)/libnn.a
	$(CC) $(ALL_LDFLAGS) $^ $(LDLIBS) -o $@

$(O)/bench/infer: $(O)/bench/infer.o $(O)/libnn.a
	$(CC) $(ALL_LDFLAGS) $^ $(LDLIBS) -o $@

$(O)/bench/prep: $(O)/bench/prep.o $(O)/libnn.a
	$(CC) $(ALL_LDFLAGS) $^ $(LDLIBS) -o $@

$(O)/bench/int8: $(O)/bench/int8.o $(O)/libnn.a
	$(CC) $(ALL_LDFLAGS) $^ $(LDLIBS) -o $@

$(O)/bench/sgemm: $(O)/bench/sgemm.o
	$(CC) $(ALL_LDFLAGS) $^ $(LDLIBS) -o $@

test: unit-test cli-test

# Unit tests, then every fuzz target replayed over its seeds and the inputs
# that once crashed it (fuzz/regress/TARGET). They run with the OpenBLAS
# kernels the tool runs with (`digits --version` names them; the tool may
# choose other kernels than OpenBLAS' own, see src/cli/blas_tune.c) unless
# OPENBLAS_CORETYPE is set.
unit-test: $(TEST_BIN) $(REPLAY_BIN) $(O)/digits
	@core=$${OPENBLAS_CORETYPE:-$$($(O)/digits --version | sed -n 's/^blas kernels: //p')}; \
	[ "$$core" = none ] || export OPENBLAS_CORETYPE=$$core; \
	echo "== unit tests with OpenBLAS kernels: $$core"; \
	fail=0; for t in $(TEST_BIN); do echo "== $$t"; $(VALGRIND) $$t || fail=1; done; \
	for t in $(FUZZ_TARGETS); do echo "== replay $$t"; \
	  $(VALGRIND) $(O)/replay/$$t fuzz/seeds/$$t fuzz/regress/$$t || fail=1; done; \
	exit $$fail

# The unit tests once under each OpenBLAS kernel family this processor can
# execute (scripts/blas-kernels), so that green here means green on the
# machines that pick the other families.
unit-test-kernels: $(TEST_BIN) $(REPLAY_BIN) $(O)/digits
	@fail=0; for k in $$(scripts/blas-kernels); do \
	  OPENBLAS_CORETYPE=$$k $(MAKE) --no-print-directory unit-test || fail=1; done; \
	exit $$fail

cli-test: $(O)/digits $(O)/tests/cli/save_loop $(O)/tests/cli/digit_png \
          $(O)/tests/cli/jsoncheck $(O)/tests/cli/nan_model \
          $(O)/tests/onnx/onnx_probs \
          $(O)/tests/cli/model_diff
	DIGITS=$(O)/digits sh tests/cli/run.sh
	DIGITS=$(O)/digits sh tests/cli/trust.sh
	DIGITS=$(O)/digits sh tests/cli/reader.sh  # tools/nn_reader.py (numpy) against the tool
	DIGITS=$(O)/digits SAVE_LOOP=$(O)/tests/cli/save_loop sh tests/cli/crash.sh
	DIGITS=$(O)/digits O=build sh tests/cli/predict.sh  # its picture renderer: plain build
	DIGITS=$(O)/digits sh tests/cli/export_c.sh
	DIGITS=$(O)/digits DIGIT_PNG=$(O)/tests/cli/digit_png SAN=$(SAN) sh tests/cli/serve.sh
	DIGITS=$(O)/digits JSONCHECK=$(O)/tests/cli/jsoncheck \
	  NAN_MODEL=$(O)/tests/cli/nan_model sh tests/cli/answers.sh
	DIGITS=$(O)/digits O=$(O) SAN=$(SAN) sh tests/cli/pkgconfig.sh
	DIGITS=$(O)/digits ONNX_PROBS=$(O)/tests/onnx/onnx_probs sh tests/cli/onnx.sh
	$(if $(filter 1,$(MPI)),$(if $(filter 1,$(SAN)),MPI_ACC_SEEDS=42) DIGITS=$(O)/digits MODEL_DIFF=$(O)/tests/cli/model_diff sh tests/cli/mpi.sh)

sanitize:
	$(MAKE) O=build-asan SAN=1 OPENMP=0 test

# Everything CI runs: gcc and clang builds warning-free, all tests, the
# tests again under ASan + UBSan, and the portable (no BLAS) path.
check:
	$(MAKE) WERROR=1 test
	$(MAKE) WERROR=1 unit-test-kernels
	$(MAKE) WERROR=1 O=build-clang CC=clang unit-test
	$(MAKE) WERROR=1 O=build-noblas BLAS=none unit-test
	$(MAKE) WERROR=1 sanitize
	$(MAKE) WERROR=1 browser-test

# digits serve's page in a real browser: Debian's Chromium, headless, driven
# by npm playwright-core (installed by the script into tests/browser/).
# Screenshots in $(O)/browser.
browser-test: $(O)/digits
	DIGITS=$(O)/digits OUT=$(O)/browser sh tests/browser/run.sh

# The unit tests and replays under valgrind memcheck: no ASan, no OpenMP
# or OpenBLAS threads (their thread pools only slow valgrind down and keep
# per-thread buffers it would report). MNIST_DIR points nowhere so that
# test_preprocess skips its MNIST round trip (2 epochs of training, many
# minutes under valgrind; the ASan build runs it).
valgrind:
	MNIST_DIR=/nonexistent $(MAKE) O=build-vg BLAS=none OPENMP=0 \
	  VALGRIND="$(VALGRIND_CMD)" unit-test

bench: all $(O)/bench/infer $(O)/bench/sgemm $(O)/bench/int8 $(O)/tests/cli/digit_png
	O=$(O) sh bench/run.sh
	O=$(O) sh bench/serve.sh

# libFuzzer targets (clang, ASan + UBSan, no BLAS or OpenMP): run them with
# scripts/fuzz SECONDS [TARGET...]; see fuzz/README.md.
fuzz:
	$(MAKE) O=build-fuzz CC=$(FUZZ_CC) BLAS=none OPENMP=0 SAN=1 FUZZ=1 \
	  $(FUZZ_TARGETS:%=build-fuzz/fuzzers/%)

# Regenerates the committed seed corpora (fuzz/seeds) from fuzz/mkseeds.c.
fuzz-seeds: $(O)/fuzz/mkseeds
	rm -rf fuzz/seeds && $(O)/fuzz/mkseeds fuzz/seeds

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/share/digits
	install -m 755 $(O)/digits $(DESTDIR)$(PREFIX)/bin/digits
	install -m 644 $(O)/libnn.a $(DESTDIR)$(PREFIX)/lib/libnn.a
	install -m 644 include/nn.h $(DESTDIR)$(PREFIX)/include/nn.h
	install -m 755 scripts/fetch-mnist $(DESTDIR)$(PREFIX)/share/digits/fetch-mnist
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@REQUIRES@|$(PC_REQUIRES)|' \
	  -e 's|@VERSION@|$(VERSION)|' \
	  -e 's|@OPENMP@|$(if $(filter 1,$(OPENMP)),-fopenmp,)|' nn.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/nn.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/digits $(DESTDIR)$(PREFIX)/lib/libnn.a \
	  $(DESTDIR)$(PREFIX)/include/nn.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/nn.pc
	rm -rf $(DESTDIR)$(PREFIX)/share/digits

clean:
	rm -rf build build-asan build-clang build-noblas build-fuzz build-vg build-npm

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:=.d) $(TEST_UTIL_OBJ:.o=.d) \
  $(FUZZ_OBJ:.o=.d) $(O)/fuzz/mkseeds.d $(O)/tests/cli/save_loop.d \
  $(O)/tests/cli/digit_png.d $(O)/tests/cli/model_diff.d \
  $(TOOL_BIN:=.d) $(O)/tests/onnx/onnx_probs.d $(O)/gen/onnx.pb-c.d
