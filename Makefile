# digits / libnn — plain Makefile.
#   make              library, tool (build/digits)
#   make test         cmocka unit tests + CLI tests (real-MNIST test if data present)
#   make sanitize     the same tests built with ASan + UBSan (in build-asan/)
#   make check        all of CI: gcc, clang, no-BLAS and sanitizer builds, -Werror
#   make bench        benchmarks (bench/README.md)
#   make install PREFIX=/usr/local
# Variables: BLAS=openblas|none (default: openblas when pkg-config finds it),
#            OPENMP=1|0, O=build folder, WERROR=1, SAN=1.

CC      ?= cc
PREFIX  ?= /usr/local
O       ?= build
OPENMP  ?= 1
PKG_CONFIG ?= pkg-config

ifeq ($(origin BLAS),undefined)
  BLAS := $(shell $(PKG_CONFIG) --exists openblas 2>/dev/null && echo openblas || echo none)
endif

CFLAGS  ?= -O2 -g
CFLAGS  += -fno-math-errno
CFLAGS  += -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -MMD -MP
CPPFLAGS += -Iinclude -Isrc -D_POSIX_C_SOURCE=200809L
LDLIBS  += -lstb -lz -lm

ifeq ($(WERROR),1)
  CFLAGS += -Werror
endif
ifeq ($(SAN),1)
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(OPENMP),1)
  CFLAGS  += -fopenmp
  LDFLAGS += -fopenmp
else
  CFLAGS  += -fopenmp-simd
endif
ifeq ($(BLAS),openblas)
  CPPFLAGS += -DNN_USE_CBLAS $(shell $(PKG_CONFIG) --cflags openblas)
  LDLIBS   += $(shell $(PKG_CONFIG) --libs openblas)
  PC_REQUIRES = openblas zlib
else
  PC_REQUIRES = zlib
endif

LIB_SRC  := $(sort $(wildcard src/nn/*.c src/data/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(O)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(O)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(O)/tests/%)
TEST_UTIL_OBJ := $(patsubst %.c,$(O)/%.o,$(wildcard tests/util/*.c))

.PHONY: all test unit-test cli-test sanitize check bench install uninstall clean fuzz

all: $(O)/libnn.a $(O)/digits

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(O)/libnn.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(O)/digits: $(CLI_OBJ) $(O)/libnn.a
	$(CC) $(LDFLAGS) $(CLI_OBJ) $(O)/libnn.a $(LDLIBS) -o $@

$(O)/tests/%: $(O)/tests/%.o $(TEST_UTIL_OBJ) $(O)/libnn.a
	$(CC) $(LDFLAGS) $< $(TEST_UTIL_OBJ) $(O)/libnn.a $(LDLIBS) -lcmocka -o $@

test: unit-test cli-test

unit-test: $(TEST_BIN)
	@fail=0; for t in $(TEST_BIN); do echo "== $$t"; $$t || fail=1; done; exit $$fail

cli-test: $(O)/digits
	DIGITS=$(O)/digits sh tests/cli/run.sh
	DIGITS=$(O)/digits O=build sh tests/cli/predict.sh  # its picture renderer: plain build

sanitize:
	$(MAKE) O=build-asan SAN=1 OPENMP=0 test

# Everything CI runs: gcc and clang builds warning-free, all tests, the
# tests again under ASan + UBSan, and the portable (no BLAS) path.
check:
	$(MAKE) WERROR=1 test
	$(MAKE) WERROR=1 O=build-clang CC=clang unit-test
	$(MAKE) WERROR=1 O=build-noblas BLAS=none unit-test
	$(MAKE) WERROR=1 sanitize

bench: all
	sh bench/run.sh

fuzz:
	$(MAKE) -C fuzz

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/share/digits
	install -m 755 $(O)/digits $(DESTDIR)$(PREFIX)/bin/digits
	install -m 644 $(O)/libnn.a $(DESTDIR)$(PREFIX)/lib/libnn.a
	install -m 644 include/nn.h $(DESTDIR)$(PREFIX)/include/nn.h
	install -m 755 scripts/fetch-mnist $(DESTDIR)$(PREFIX)/share/digits/fetch-mnist
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@REQUIRES@|$(PC_REQUIRES)|' \
	  -e 's|@OPENMP@|$(if $(filter 1,$(OPENMP)),-fopenmp,)|' nn.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/nn.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/digits $(DESTDIR)$(PREFIX)/lib/libnn.a \
	  $(DESTDIR)$(PREFIX)/include/nn.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/nn.pc
	rm -rf $(DESTDIR)$(PREFIX)/share/digits

clean:
	rm -rf build build-asan build-clang build-noblas

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:=.d) $(TEST_UTIL_OBJ:.o=.d)
