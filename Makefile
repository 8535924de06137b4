# Entry points a new user runs (see README.md).
#   make deps   install the Debian packages stave needs (idempotent; run as root or with sudo)
#   make build  Release build; binaries land in build/bin/
#   make test   deps + build + ctest (all but the soak test)
#   make soak   the soak test: staved under mixed load for $STAVE_SOAK_MINUTES (default 10)
#   make fuzz   libFuzzer targets (clang, ASan+UBSan, build-fuzz/), each run $FUZZ_SECONDS (600)
#   make sanitize  the tests under ASan+UBSan (gcc, build-asan/); see fuzz/README.md
SHELL := /bin/bash
BUILD_DIR ?= build
JOBS ?= 2

DEB_PACKAGES := cmake make g++ ccache pkg-config \
  libtorch-dev libopenblas0-openmp \
  libabsl-dev libspdlog-dev nlohmann-json3-dev libcli11-dev libsentencepiece-dev \
  libplplot-dev plplot-driver-cairo \
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
  prometheus-cpp-dev libcpp-httplib-dev libyaml-cpp-dev python3-grpcio python3-protobuf yamllint \
  python3-venv python3-setuptools python3-wheel \
  libgtest-dev libbenchmark-dev libpcre2-dev clang-format clang-tidy git

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build test soak fuzz sanitize clean

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "make deps: all packages present"; fi

build:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD_DIR) -j$(JOBS)

test: deps build
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS) -LE soak

soak: deps build
	cd $(BUILD_DIR) && ctest --output-on-failure -L soak --verbose

# Fuzzing: its own build with clang (libFuzzer), every target instrumented with ASan+UBSan.
# FUZZ_TARGETS picks targets (config_file links the whole core and server: a long first build).
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= gguf gguf_tokenizer tokenizer_json safetensors_header llama2c_header hf_config \
  router_checkpoint request config_file
FUZZ_FLAGS := -fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined -fno-omit-frame-pointer

fuzz: deps
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTAVE_FUZZ=ON \
	  -DCMAKE_CXX_FLAGS="$(FUZZ_FLAGS)"
	cmake --build $(FUZZ_DIR) -j$(JOBS) --target $(addprefix stave_fuzz_,$(FUZZ_TARGETS))
	fuzz/run_fuzzers.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The tests under ASan+UBSan: a second build (gcc, -O1) in build-asan/. SentencePiece is not
# loadable there (see core/sentencepiece_shim.h); its tests skip with that message. Leak checking
# is on; halt_on_error makes any report fail the test that produced it.
# SANITIZE_SCOPE=all (default): every test but soak, i.e. a full second build of the tree.
# SANITIZE_SCOPE=light: the LibTorch-free binaries only (GGUF, quant, tokenizers, fuzz replays).
# SANITIZE_SCOPE=ci (what .ci/run runs): light plus staved, stave and stave_server_tests, running
# the light tests and the integration tests but SANITIZE_CI_SKIP (staved under ASan on loopback);
# stave_unit_tests (most of the LibTorch compile time) is not built.
SANITIZE_DIR ?= build-asan
SANITIZE_SCOPE ?= all
# -fdebug-prefix-map: with -g, ccache hashes the build directory unless it is given, so another
# clone or worktree would never hit the cache.
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
  -fdebug-prefix-map=$(CURDIR)=.
# Reports go to files (log_path) as well as failing the process: staved runs as a child of the
# integration tests, which do not check its exit status, so its reports would otherwise pass
# unseen. Any file there after ctest fails `make sanitize` and is printed.
SANITIZE_LOGS := $(abspath $(SANITIZE_DIR))/sanitizer-logs
SANITIZE_ENV := ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:strict_string_checks=1:log_path=$(SANITIZE_LOGS)/asan \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(SANITIZE_LOGS)/ubsan \
  LSAN_OPTIONS=suppressions=$(CURDIR)/fuzz/lsan.supp:print_suppressions=0
SANITIZE_CHECK_LOGS := if ls $(SANITIZE_LOGS)/* >/dev/null 2>&1; then \
  echo "make sanitize: sanitizer reports in $(SANITIZE_LOGS):"; head -n 60 $(SANITIZE_LOGS)/*; exit 1; fi
LIGHT_FUZZ := gguf gguf_tokenizer tokenizer_json safetensors_header llama2c_header hf_config router_checkpoint request
SANITIZE_LIGHT_TARGETS := stave_gguf_tests stave_quant_tests stave_text_tokenizer_tests stave_parsers_tests \
  $(addprefix stave_fuzz_replay_,$(LIGHT_FUZZ))
# Light scope runs the ctest labels light (the light binaries' tests) and fuzz_replay, so a
# build directory that also holds staved and the LibTorch test binaries runs the same tests.
SANITIZE_LIGHT_EXCLUDE := _NOT_BUILT$$|^fuzz_replay_config_file$$
SANITIZE_CI_TARGETS := $(SANITIZE_LIGHT_TARGETS) staved stave stave_server_tests stave_descriptor_set
# ci scope runs every test of the binaries it builds (and the Python tests against staved) but
# SANITIZE_CI_SKIP: stave_cli_usability and http_api serve or evaluate the embedded default model,
# whose SentencePiece tokenizer sanitizer builds cannot load (their other checks passed under ASan,
# see fuzz/README.md).
SANITIZE_CI_SKIP ?= ^(stave_cli_usability|http_api)$$

sanitize: deps
	cmake -S . -B $(SANITIZE_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
	  -DCMAKE_CXX_FLAGS="$(SANITIZE_FLAGS)"
	rm -rf $(SANITIZE_LOGS) && mkdir -p $(SANITIZE_LOGS)
ifeq ($(SANITIZE_SCOPE),light)
	cmake --build $(SANITIZE_DIR) -j$(JOBS) --target $(SANITIZE_LIGHT_TARGETS)
	cd $(SANITIZE_DIR) && $(SANITIZE_ENV) ctest --output-on-failure -j$(JOBS) -L '^(light|fuzz_replay)$$' -E '$(SANITIZE_LIGHT_EXCLUDE)'; \
	  rc=$$?; $(SANITIZE_CHECK_LOGS); exit $$rc
else ifeq ($(SANITIZE_SCOPE),ci)
	cmake --build $(SANITIZE_DIR) -j$(JOBS) --target $(SANITIZE_CI_TARGETS)
	cd $(SANITIZE_DIR) && $(SANITIZE_ENV) ctest --output-on-failure -j$(JOBS) -LE soak \
	  -E '_NOT_BUILT$$|^fuzz_replay_config_file$$|$(SANITIZE_CI_SKIP)'; \
	  rc=$$?; $(SANITIZE_CHECK_LOGS); exit $$rc
else
	cmake --build $(SANITIZE_DIR) -j$(JOBS)
	cd $(SANITIZE_DIR) && $(SANITIZE_ENV) ctest --output-on-failure -j$(JOBS) -LE soak; \
	  rc=$$?; $(SANITIZE_CHECK_LOGS); exit $$rc
endif

clean:
	rm -rf $(BUILD_DIR)
