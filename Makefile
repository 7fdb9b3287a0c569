# Set-up is part of every target: a fresh Debian machine with Python 3.11 needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-ble images fuzz soak clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "smpsim needs Python 3.11 or newer"'
	@# Debian packages the tests drive: tmux (a terminal for the serial shell test).
	command -v tmux >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends tmux; }
	@# dbus-daemon: the private bus the BLE tests run BlueZoo (a BlueZ mock) on.
	command -v dbus-daemon >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends dbus; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

PROFILE ?= nrf52840dk

run: $(STAMP)
	$(BIN)/smpsim run --profile $(PROFILE) --flash var/flash-$(notdir $(basename $(PROFILE))).bin \
		--serial var/$(notdir $(basename $(PROFILE))).tty --udp 127.0.0.1:1337 --udp [::1]:1337

lint: $(STAMP)
	$(BIN)/ruff check simulator tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

# Rebuild the sample images and the packaged factory images (keys are made once, never replaced).
images: $(STAMP)
	$(BIN)/python flash_images/build.py

# Coverage-guided fuzzing of every target for FUZZ_S seconds in all (or FUZZ_INPUTS inputs);
# crashes leave reproducers in tests/fuzz/corpus/, replayed by make test.
FUZZ_S ?= 60
fuzz: $(STAMP)
	FUZZ_S=$(FUZZ_S) $(BIN)/python -m tests.fuzz.run

# Not a test: 10,000 resets and 1M requests with RSS before and after, then the kill -9 campaign.
soak: $(STAMP)
	$(BIN)/python bench/soak.py
	$(BIN)/python bench/kill_campaign.py

bench: $(STAMP)
	$(BIN)/python bench/bench_udp.py

bench-ble: $(STAMP)
	$(BIN)/python bench/bench_ble.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis
