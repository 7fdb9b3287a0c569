# Set-up is part of every target: a fresh Debian machine with Python 3.11 needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-ble bench-fleet images screenshot demo docker-test fuzz soak clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "smpsim needs Python 3.11 or newer"'
	@# Debian packages the tests drive: tmux (a terminal for the serial shell test).
	command -v tmux >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends tmux; }
	@# dbus-daemon: the private bus the BLE tests run BlueZoo (a BlueZ mock) on.
	command -v dbus-daemon >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends dbus; }
	@# chromium: the headless browser the Web Bluetooth and dashboard tests drive (Debian's; none
	@# is downloaded).
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,webbt]'
	touch $(STAMP)

PROFILE ?= nrf52840dk

run: $(STAMP)
	$(BIN)/smpsim run --profile $(PROFILE) --flash var/flash-$(notdir $(basename $(PROFILE))).bin \
		--serial var/$(notdir $(basename $(PROFILE))).tty --udp 127.0.0.1:1337 --udp [::1]:1337

lint: $(STAMP)
	$(BIN)/ruff check simulator tests bench docker
	$(BIN)/mypy
	$(BIN)/hadolint docker/Dockerfile docker/client.Dockerfile

test: lint
	$(BIN)/pytest -q

# Rebuild the sample images and the packaged factory images (keys are made once, never replaced).
images: $(STAMP)
	$(BIN)/python flash_images/build.py

# The README's picture of the dashboard, taken mid-swap from the rollback demo.
screenshot: $(STAMP)
	$(BIN)/python docs/screenshot.py

# The rollback story on a board, with its dashboard (open the address it prints).
demo: $(STAMP)
	$(BIN)/smpsim demo rollback --pause --stay

# The container image in a real Docker, end to end (docker/test.sh says what it does). Needs
# root and minutes: not part of `make test`.
docker-test: $(STAMP)
	bash docker/test.sh

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
	$(BIN)/python bench/bench_control_cost.py
	$(BIN)/python bench/bench_perf.py
	$(BIN)/python bench/bench_dashboard.py

bench-ble: $(STAMP)
	$(BIN)/python bench/bench_ble.py

# 1,000 boards in one process, 10,000 across two; about 11 GiB of flash files in a temporary
# folder while it runs, and a few minutes.
bench-fleet: $(STAMP)
	$(BIN)/python bench/bench_fleet.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis
