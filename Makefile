# tally: the commands a developer needs. CMake does the building.
#   make            build (build/)
#   make check      install dependencies, build with -Werror, run every test,
#                   then the ASan+UBSan build with the fuzzers
#   make asan       the sanitizer build and its tests only
#   make netfuzz    the sanitizer build, then each daemon fuzzed over the network
#                   for NETFUZZ_SECS (default 600) (tests/netfuzz/README.md)
#   make bench      the media benchmark (bench/README.md)
#   make sipbench   the SIP benchmark (calls per second vs Kamailio+rtpengine)
#   make recbench   the recorder benchmark (SIPREC sessions, 0 loss, finalize)
#   make media      run tally-media in the foreground with etc/tally-media.conf
#   make demo       a real A/V call through tally-sip + tally-media, recorded by
#                   tally-recorder (scripts/demo.py; output in demo-out/)
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
CTEST_ARGS ?= --output-on-failure

.PHONY: all deps build check test asan netfuzz bench sipbench recbench media demo clean

all: build

deps:
	@bash scripts/deps.sh

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTALLY_WERROR=ON >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# -j: unit and fuzz tests run side by side; integration and netfuzz tests
# are RUN_SERIAL (daemons, loads, timing) and run alone
test: build
	cd $(BUILD) && ctest $(CTEST_ARGS) -j $(JOBS)

asan: deps
	@CC=clang cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug \
		-DTALLY_WERROR=ON -DTALLY_SANITIZE=ON -DTALLY_FUZZ=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest $(CTEST_ARGS) -j $(JOBS) -L 'unit|fuzz|integration|netfuzz' -E 'interop'

# NETFUZZ_SECS per daemon; NETFUZZ_OUT keeps records and reports of findings
NETFUZZ_SECS ?= 600
NETFUZZ_OUT ?= $(ASAN_BUILD)/netfuzz-out
netfuzz: deps
	@CC=clang cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug \
		-DTALLY_WERROR=ON -DTALLY_SANITIZE=ON -DTALLY_FUZZ=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS) --target tally-media tally-sip tally-recorder
	@rc=0; for t in media sip recorder; do \
		TALLY_MEDIA=$(ASAN_BUILD)/src/media/tally-media \
		TALLY_SIP=$(ASAN_BUILD)/src/sip/tally-sip \
		TALLY_RECORDER=$(ASAN_BUILD)/src/recorder/tally-recorder \
		python3 tests/netfuzz/netfuzz.py --target $$t --seconds $(NETFUZZ_SECS) \
			--out $(NETFUZZ_OUT)/$$t || rc=1; \
	done; exit $$rc

check: deps test asan

bench: deps
	@cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release -DTALLY_TESTS=OFF >/dev/null
	@cmake --build build-rel -j $(JOBS)
	python3 bench/run.py --rt 10 --tally build-rel/src/media/tally-media

sipbench: deps
	python3 bench/sipbench.py

# RECBENCH_ARGS: e.g. --quick, --sessions 250,300,350, --no-rtpengine
recbench: deps
	@cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release -DTALLY_TESTS=OFF >/dev/null
	@cmake --build build-rel -j $(JOBS) --target tally-recorder
	python3 bench/recbench.py --recorder build-rel/src/recorder/tally-recorder $(RECBENCH_ARGS)

media: build
	$(BUILD)/src/media/tally-media --config-file=etc/tally-media.conf --foreground

# DEMO_ARGS: e.g. --seconds 20, --out /tmp/demo
demo: deps build
	python3 scripts/demo.py --build $(BUILD) $(DEMO_ARGS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
