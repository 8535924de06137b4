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
  libgtest-dev libbenchmark-dev libpcre2-dev

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
SANITIZE_DIR ?= build-asan
SANITIZE_SCOPE ?= all
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SANITIZE_ENV := ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:strict_string_checks=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 LSAN_OPTIONS=suppressions=$(CURDIR)/fuzz/lsan.supp
LIGHT_FUZZ := gguf gguf_tokenizer tokenizer_json safetensors_header llama2c_header hf_config router_checkpoint request
SANITIZE_LIGHT_TARGETS := stave_gguf_tests stave_quant_tests stave_text_tokenizer_tests stave_parsers_tests \
  $(addprefix stave_fuzz_replay_,$(LIGHT_FUZZ))
# Left out in light scope: what needs the unbuilt binaries (staved, the LibTorch test binaries).
SANITIZE_LIGHT_EXCLUDE := _NOT_BUILT$$|^python_grpcio_client$$|^fuzz_replay_config_file$$

sanitize: deps
	cmake -S . -B $(SANITIZE_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
	  -DCMAKE_CXX_FLAGS="$(SANITIZE_FLAGS)"
ifeq ($(SANITIZE_SCOPE),light)
	cmake --build $(SANITIZE_DIR) -j$(JOBS) --target $(SANITIZE_LIGHT_TARGETS)
	cd $(SANITIZE_DIR) && $(SANITIZE_ENV) ctest --output-on-failure -j$(JOBS) -LE soak -E '$(SANITIZE_LIGHT_EXCLUDE)'
else
	cmake --build $(SANITIZE_DIR) -j$(JOBS)
	cd $(SANITIZE_DIR) && $(SANITIZE_ENV) ctest --output-on-failure -j$(JOBS) -LE soak
endif

clean:
	rm -rf $(BUILD_DIR)
