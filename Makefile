# Entry points a new user runs (see README.md).
#   make deps   install the Debian packages stave needs (idempotent; run as root or with sudo)
#   make build  Release build; binaries land in build/bin/
#   make test   deps + build + ctest (all but the soak test)
#   make soak   the soak test: staved under mixed load for $STAVE_SOAK_MINUTES (default 10)
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

.PHONY: deps build test soak clean

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

clean:
	rm -rf $(BUILD_DIR)
