# The README's two commands: `make demo` (set up + run the main job) and `make test` (which builds the docs too).
# Each creates its own virtual environment; PyTorch is pinned to the CPU build on this disk.
PYTHON ?= python3
DEMO_VENV := .venv-demo
TEST_VENV := .venv-test
TORCH_CPU := torch==2.13.0
OUT ?= demo_out

.PHONY: demo test docs setup-demo setup-test native-deps embed-test bench clean

$(DEMO_VENV)/.done: pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/pip install -q --upgrade pip
	$(DEMO_VENV)/bin/pip install -q -e ".[export]"
	touch $@

$(TEST_VENV)/.done: pyproject.toml
	$(PYTHON) -m venv $(TEST_VENV)
	$(TEST_VENV)/bin/pip install -q --upgrade pip
	$(TEST_VENV)/bin/pip install -q $(TORCH_CPU)
	$(TEST_VENV)/bin/pip install -q -e ".[test,train,export,mpi]"
	touch $@

setup-demo: $(DEMO_VENV)/.done
setup-test: $(TEST_VENV)/.done native-deps

# The native embedding's tests (tests/test_native.py) build native/ with gcc, g++ and gfortran; gfortran is
# installed from Debian's packages when missing (needs root and apt-get, as CI has; else its test skips).
native-deps:
	@command -v gfortran >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get install -y -q gfortran >/dev/null 2>&1 || \
		  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q gfortran >/dev/null 2>&1; }; }; } || \
		echo "setup: gfortran not installed (needs root and apt-get): the Fortran host's test will skip"

# The demo needs no PyTorch: the shipped ONNX model (models/) runs on onnxruntime.
MODEL ?= models/crnn.onnx
PHYSICS := --epsilon 1.5 --dt 4e-3 --steps-per-frame 200
demo: setup-demo
	rm -rf $(OUT) && mkdir -p $(OUT)
	@echo "== 1. a small data set with the solver (4 sequences, 32^3, the shipped model's physics)"
	$(DEMO_VENV)/bin/python -m ch_numba generate $(OUT)/small.h5 --sequences 4 --frames 50 --size 32 $(PHYSICS) \
		--seed 31337 --backend auto
	$(DEMO_VENV)/bin/python -m ch_numba info $(OUT)/small.h5
	$(DEMO_VENV)/bin/python -m ch_numba render $(OUT)/small.h5 --sequence 0 --frames 0,10,-1 --out $(OUT)/pictures
	@echo "== 2. the shipped surrogate from frame 0 of the same 4 sequences (initial conditions it never saw in training), compared with the solver"
	$(DEMO_VENV)/bin/python -m surrogate evaluate $(MODEL) $(OUT)/small.h5 --split all --out $(OUT)/evaluation
	@echo "== 3. a surrogate rollout of 500 network steps (10x the 50-frame sequences above, t = 400; a frame stored every 25) on a 2x larger box (64^3)"
	$(DEMO_VENV)/bin/python -m export.rollout $(MODEL) --ic perlin --size 64 --frequency 6 --steps 500 --every 25 \
		--out $(OUT)/long_rollout.h5
	$(DEMO_VENV)/bin/python -m ch_numba render $(OUT)/long_rollout.h5 --sequence 0 --frames 0,4,10,-1 --out $(OUT)/pictures_long
	@echo "demo done: look first at $(OUT)/evaluation/overview.png (free energy on the network grid, surrogate vs solver);"
	@echo "  the other $(OUT)/evaluation/*.png, $(OUT)/pictures*/ (slices, .vti for ParaView)"

test: setup-test
	$(TEST_VENV)/bin/ruff format --check --quiet .   # the code style (pinned ruff; `ruff format .` fixes it)
	$(MAKE) --no-print-directory docs   # the site, tutorials executed; tests/test_docs.py reads it
	$(TEST_VENV)/bin/python -m pytest -q

# The documentation site into docs/_build/html (open docs/_build/html/index.html): warnings are errors, every
# cross-reference must resolve, the tutorials run (CH3D_DOCS_EXECUTE=False skips them; sphinx-gallery reruns only
# the changed ones). -E: a fresh environment, so warnings of unchanged pages are reported again.
DOCS_OUT := docs/_build/html
docs: setup-test
	rm -rf $(DOCS_OUT)/_modules   # the highlighted sources (viewcode writes only the changed ones)
	@# sphinx-gallery keeps the pages of a tutorial that was renamed or removed: drop them (the others stay cached)
	@for f in docs/auto_tutorials/tutorial_*.rst; do [ -e "$$f" ] || continue; b=$$(basename "$$f" .rst); \
		[ -e "docs/tutorials/$$b.py" ] || rm -f docs/auto_tutorials/$$b.* docs/auto_tutorials/images/*$$b* \
			$(DOCS_OUT)/auto_tutorials/$$b.html; done
	$(TEST_VENV)/bin/python -m sphinx -b html -W --keep-going -q -E -d docs/_build/doctrees docs $(DOCS_OUT)
	@echo "docs: $(DOCS_OUT)/index.html"

# C, C++ and Fortran hosts of native/ (built into build/native) against the Python runtime, and the halos
embed-test: setup-test
	$(TEST_VENV)/bin/python -m pytest -q tests/test_native.py tests/test_halo.py

bench: setup-test
	$(TEST_VENV)/bin/python benchmarks/solver.py
	$(TEST_VENV)/bin/python benchmarks/sass_count.py
	$(TEST_VENV)/bin/python benchmarks/crnn_step.py
	$(TEST_VENV)/bin/python benchmarks/runtime.py

clean:
	rm -rf $(DEMO_VENV) $(TEST_VENV) $(OUT) build/native docs/_build docs/auto_tutorials docs/sg_execution_times.rst
