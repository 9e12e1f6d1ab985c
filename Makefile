# stompd: plain GNU make with pkg-config.
#
#   make            install missing build packages, build everything
#   make run        build, run stompd in the foreground on 127.0.0.1:61613 (memory store)
#   make test       build and run every test, print the summary
#   make SANITIZE=1 test   the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz       libFuzzer on the frame parser for FUZZ_SECONDS (default 60), then on the
#                   whole broker for FUZZ_BROKER_SECONDS (default: FUZZ_SECONDS), then on
#                   the selector compiler for FUZZ_SELECTOR_SECONDS (default: FUZZ_SECONDS)
#   make bench      benchmarks (never part of the tests)
#   make bench-compare  the same scenarios against RabbitMQ's STOMP plugin, as ratios
#   make web        the browser chat page in $(BUILD)/web (stompd --web-root $(BUILD)/web)
#   make install PREFIX=/usr/local DESTDIR=
#
# Layout: frames/*.c -> libframes.a; frames + store/*.c + broker/ and its sub-folders
# (net/, session/, route/, ...) except broker/daemon/ and broker/ctl/ -> libbroker.a / .so;
# broker/daemon/*.c + libbroker.a -> stompd; tests/<area>/test_*.c -> one cmocka binary
# each, linked with tests/lib/*.c (tests/daemon/ ones with the daemon's modules too, all
# but main.c); contrib/bench/*.c -> one program each, all of contrib/bench/loadgen/*.c ->
# loadgen, all of contrib/bench/relay/*.c -> relay; broker/ctl/*.c -> stompctl (the
# management API's client);
# broker/admin/console/* -> a generated C file of the library (contrib/embed_files.sh).
# New files and new library folders need no change here.

PREFIX ?= /usr/local
DESTDIR ?=
FUZZ_SECONDS ?= 60
VERSION := 0.1.0
SOVERSION := 0

CC ?= cc
WERROR ?= -Werror
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes $(WERROR)
ifeq ($(SANITIZE),1)
BUILD ?= build/san
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
else
BUILD ?= build
OPT := -O2 -g
endif

PKGS := libuv sqlite3 nettle openssl jansson
# libpq: its header only; the PostgreSQL store loads the library when it opens (store/pg_lib.h),
# so that its twenty dependencies do not slow every start. Tests that talk to their private
# server themselves link it.
PQ_CFLAGS = $(shell pkg-config --cflags libpq 2>/dev/null)
PQ_LIBS = $(shell pkg-config --libs libpq 2>/dev/null)
# WebSocket framing and the HTTP upgrade request: Debian ships no .pc files for these.
WS_LIBS := -lwslay -lhttp_parser
# Recursive (=) so pkg-config runs when a recipe needs it, after `deps` has installed it.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(PQ_CFLAGS)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_CFLAGS = $(shell pkg-config --cflags cmocka 2>/dev/null)
CMOCKA_LIBS = $(shell pkg-config --libs cmocka 2>/dev/null)
# Libraries only the daemon links (config parser, password hashing, ...).
DAEMON_PKGS := inih libsodium libxcrypt
DAEMON_LIBS = $(if $(strip $(DAEMON_PKGS)),$(shell pkg-config --libs $(DAEMON_PKGS) 2>/dev/null))

CPPFLAGS += -D_GNU_SOURCE -Iframes -Istore -Ibroker -DSTOMPD_VERSION='"$(VERSION)"'
CFLAGS_ALL = -std=c11 $(OPT) $(WARN) -fPIC $(CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) $(WS_LIBS) -ldl -lpthread $(LDLIBS)

FRAMES_SRC := $(wildcard frames/*.c)
# The library is all of broker/ (two folder levels down) but the daemon and stompctl.
BROKER_SRC := $(filter-out broker/daemon/% broker/ctl/%,$(wildcard broker/*.c broker/*/*.c broker/*/*/*.c))
LIB_SRC := $(FRAMES_SRC) $(wildcard store/*.c) $(BROKER_SRC)
# The web console's files, compiled into the library (contrib/embed_files.sh).
CONSOLE_FILES := $(sort $(wildcard broker/admin/console/*))
TEST_SRC := $(wildcard tests/*/test_*.c)
TESTLIB_SRC := $(wildcard tests/lib/*.c)
BENCH_SRC := $(wildcard contrib/bench/*.c)
LOADGEN_SRC := $(wildcard contrib/bench/loadgen/*.c)
RELAY_SRC := $(wildcard contrib/bench/relay/*.c)
EMBED_SRC := $(wildcard contrib/embed/*.c)
# stompctl, the management API's command-line client: all of broker/ctl/*.c.
CTL_SRC := $(wildcard broker/ctl/*.c)
CTL_OBJ := $(CTL_SRC:%.c=$(BUILD)/%.o)
STOMPCTL := $(if $(CTL_SRC),$(BUILD)/stompctl)

FRAMES_OBJ := $(FRAMES_SRC:%.c=$(BUILD)/%.o)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/console_files.o
TESTLIB_OBJ := $(TESTLIB_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:%.c=$(BUILD)/%)
LOADGEN_OBJ := $(LOADGEN_SRC:%.c=$(BUILD)/%.o)
RELAY_OBJ := $(RELAY_SRC:%.c=$(BUILD)/%.o)
BENCH_BIN := $(BENCH_SRC:contrib/bench/%.c=$(BUILD)/bench/%) $(BUILD)/bench/loadgen \
	$(BUILD)/bench/relay
EMBED_BIN := $(EMBED_SRC:contrib/embed/%.c=$(BUILD)/embed/%)
# The daemon (main, command line, config file, daemonizing, pidfile, log sink, auth file)
# is not part of the library: it goes into stompd only.
DAEMON_SRC := $(wildcard broker/daemon/*.c)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/%.o)
HAVE_MAIN := $(wildcard broker/daemon/main.c)
STOMPD := $(if $(HAVE_MAIN),$(BUILD)/stompd)
HAVE_BROKER_H := $(wildcard broker/broker.h)

.PHONY: all build run test check deps fuzz fuzz-build bench bench-compare install clean web
# Keep test objects between runs (they are intermediate files of the test binaries).
.SECONDARY:
.DEFAULT_GOAL := all

all: deps
	@$(MAKE) --no-print-directory build

deps:
	@sh contrib/deps.sh build

build: $(BUILD)/libframes.a $(BUILD)/libbroker.a $(BUILD)/libbroker.so $(STOMPD) $(STOMPCTL) \
	$(BENCH_BIN) $(EMBED_BIN) $(BUILD)/libbroker.pc $(BUILD)/libframes.pc

run: deps
	@$(MAKE) --no-print-directory build
	$(BUILD)/stompd --host 127.0.0.1 --port 61613

test:
	@sh contrib/deps.sh build test
	@$(MAKE) --no-print-directory check

# Build and run the tests without looking at packages (deps already there).
check: build $(TEST_BIN)
	@BUILD=$(BUILD) bash tests/run.sh $(TEST_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS_ALL) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests/lib $(CFLAGS_ALL) $(PKG_CFLAGS) $(CMOCKA_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/gen/console_files.c: $(CONSOLE_FILES) contrib/embed_files.sh
	@mkdir -p $(dir $@)
	sh contrib/embed_files.sh $@ $(CONSOLE_FILES)

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(CC) $(CPPFLAGS) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libframes.a: $(FRAMES_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/libbroker.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/libbroker.so: $(LIB_OBJ) contrib/libbroker.map
	$(CC) $(CFLAGS_ALL) -shared -Wl,-soname,libbroker.so.$(SOVERSION) \
		-Wl,--version-script=contrib/libbroker.map -o $@ $(LIB_OBJ) $(LDFLAGS) $(LDLIBS_ALL)

$(BUILD)/stompd: $(DAEMON_OBJ) $(BUILD)/libbroker.a
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDFLAGS) $(DAEMON_LIBS) $(LDLIBS_ALL)

$(BUILD)/stompctl: $(CTL_OBJ)
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDFLAGS) $(shell pkg-config --libs jansson openssl 2>/dev/null)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TESTLIB_OBJ) $(BUILD)/libbroker.a
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDFLAGS) $(CMOCKA_LIBS) $(PQ_LIBS) $(LDLIBS_ALL)

# The daemon's unit tests call its modules directly (this rule's shorter stem wins).
DAEMON_TEST_OBJ := $(filter-out $(BUILD)/broker/daemon/main.o,$(DAEMON_OBJ))
$(BUILD)/tests/daemon/%: $(BUILD)/tests/daemon/%.o $(TESTLIB_OBJ) $(DAEMON_TEST_OBJ) \
	$(BUILD)/libbroker.a
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDFLAGS) $(CMOCKA_LIBS) $(PQ_LIBS) $(DAEMON_LIBS) $(LDLIBS_ALL)

$(BUILD)/bench/%: contrib/bench/%.c $(BUILD)/libbroker.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS_ALL) $(PKG_CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS_ALL)

$(BUILD)/bench/loadgen: $(LOADGEN_OBJ) $(BUILD)/libbroker.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDFLAGS) $(LDLIBS_ALL)

$(BUILD)/bench/relay: $(RELAY_OBJ) $(BUILD)/libbroker.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDFLAGS) $(LDLIBS_ALL)

$(BUILD)/embed/%: contrib/embed/%.c $(BUILD)/libbroker.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS_ALL) $(PKG_CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS_ALL)

$(BUILD)/%.pc: contrib/%.pc.in
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

# The browser chat page and the STOMP client it loads, for stompd --web-root $(BUILD)/web.
# The client bundle is copied from the pinned npm package (tests/clients), never committed.
STOMPJS_UMD := tests/clients/node_modules/@stomp/stompjs/bundles/stomp.umd.min.js
web: $(BUILD)/web/index.html $(BUILD)/web/stomp.umd.min.js

$(STOMPJS_UMD):
	@sh contrib/deps.sh test

$(BUILD)/web/index.html: contrib/web/index.html
	@mkdir -p $(dir $@)
	cp $< $@

$(BUILD)/web/stomp.umd.min.js: $(STOMPJS_UMD)
	@mkdir -p $(dir $@)
	cp $< $@

# libFuzzer needs clang; the fuzz build has its own directory. The broker target links
# the library built again with the fuzzer's coverage (fuzzer-no-link) in $(FUZZ_BUILD)/obj.
FUZZ_BUILD := build/fuzz
FUZZ_BROKER_SECONDS ?= $(FUZZ_SECONDS)
FUZZ_SELECTOR_SECONDS ?= $(FUZZ_SECONDS)
SELECTOR_SRC := broker/route/selector.c broker/route/selector_eval.c
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_FLAGS := -std=c11 -g -O1 -D_GNU_SOURCE -Iframes -fsanitize=fuzzer $(FUZZ_SAN)
FUZZ_LIB_FLAGS := -std=c11 -g -O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o) $(FUZZ_BUILD)/obj/gen/console_files.o
FUZZ_RUN := -timeout=10 -rss_limit_mb=1024 -print_final_stats=1
# A SQLite input of the broker target runs some twenty times longer than one on the memory
# store: inputs are given time in inverse proportion to how long they run.
FUZZ_BROKER_RUN := -entropic_scale_per_exec_time=1
fuzz:
	@sh contrib/deps.sh fuzz
	@$(MAKE) --no-print-directory fuzz-build
	@mkdir -p $(FUZZ_BUILD)/new $(FUZZ_BUILD)/broker_new $(FUZZ_BUILD)/crashes
	$(FUZZ_BUILD)/fuzz_parser -max_total_time=$(FUZZ_SECONDS) $(FUZZ_RUN) \
		-dict=tests/fuzz/stomp.dict -artifact_prefix=$(FUZZ_BUILD)/crashes/ \
		$(FUZZ_BUILD)/new tests/fuzz/corpus
	$(FUZZ_BUILD)/fuzz_broker -max_total_time=$(FUZZ_BROKER_SECONDS) $(FUZZ_RUN) \
		$(FUZZ_BROKER_RUN) -dict=tests/fuzz/stomp.dict \
		-artifact_prefix=$(FUZZ_BUILD)/crashes/broker- \
		$(FUZZ_BUILD)/broker_new tests/fuzz/broker_corpus
	@mkdir -p $(FUZZ_BUILD)/selector_new
	$(FUZZ_BUILD)/fuzz_selector -max_total_time=$(FUZZ_SELECTOR_SECONDS) $(FUZZ_RUN) \
		-artifact_prefix=$(FUZZ_BUILD)/crashes/selector- \
		$(FUZZ_BUILD)/selector_new tests/fuzz/selector_corpus

fuzz-build: $(FUZZ_BUILD)/fuzz_parser $(FUZZ_BUILD)/fuzz_broker $(FUZZ_BUILD)/fuzz_selector

# The selector compiler is standalone (libc only): the target links its two files.
$(FUZZ_BUILD)/fuzz_selector: tests/fuzz/fuzz_selector.c $(SELECTOR_SRC) \
	$(wildcard broker/route/selector*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -Ibroker -Wall -Wextra -o $@ tests/fuzz/fuzz_selector.c $(SELECTOR_SRC)

$(FUZZ_BUILD)/fuzz_parser: tests/fuzz/fuzz_parser.c tests/fuzz/fuzz_settings.h $(FRAMES_SRC) \
	$(wildcard frames/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_parser.c $(FRAMES_SRC)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) $(FUZZ_LIB_FLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) $(FUZZ_LIB_FLAGS) -c $< -o $@

$(FUZZ_BUILD)/fuzz_broker: tests/fuzz/fuzz_broker.c $(FUZZ_LIB_OBJ)
	clang $(CPPFLAGS) $(FUZZ_FLAGS) $(PKG_CFLAGS) -Wall -Wextra -o $@ tests/fuzz/fuzz_broker.c \
		$(FUZZ_LIB_OBJ) $(LDFLAGS) $(LDLIBS_ALL)

bench: all
	@sh contrib/bench/run.sh $(BUILD)

bench-compare: all
	@sh contrib/bench/compare.sh $(BUILD)

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/include/stompd
	install -m 644 frames/stomp.h $(DESTDIR)$(PREFIX)/include/stompd/
	$(if $(HAVE_BROKER_H),install -m 644 broker/broker.h $(wildcard store/store*.h) \
		$(DESTDIR)$(PREFIX)/include/stompd/)
	install -m 644 $(BUILD)/libframes.a $(BUILD)/libbroker.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libbroker.so $(DESTDIR)$(PREFIX)/lib/libbroker.so.$(VERSION)
	ln -sf libbroker.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libbroker.so.$(SOVERSION)
	ln -sf libbroker.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libbroker.so
	install -m 644 $(BUILD)/libbroker.pc $(BUILD)/libframes.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	$(if $(STOMPD),install -m 755 $(STOMPD) $(DESTDIR)$(PREFIX)/bin/)
	$(if $(STOMPCTL),install -m 755 $(STOMPCTL) $(DESTDIR)$(PREFIX)/bin/)
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 644 contrib/man/stompctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 contrib/man/stompd.8 $(DESTDIR)$(PREFIX)/share/man/man8/

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
