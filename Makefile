# Two commands do everything on a fresh machine:
#   make plan   installs geoplan in .venv and plans the shipped Haibowan sample into maps/
#   make test   installs geoplan with its test tools (and Chromium) and runs the whole suite
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: plan test install chromium

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/.installed

plan: $(BIN)/.installed
	$(BIN)/geoplan plan layers/haibowan --out maps/haibowan

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; }

test: $(BIN)/.installed chromium
	$(BIN)/python -m pytest
