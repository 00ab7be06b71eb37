# The README's two commands: `make demo` (set up + run the main job) and `make test`.
# Each creates its own virtual environment; PyTorch is pinned to the CPU build on this disk.
PYTHON ?= python3
DEMO_VENV := .venv-demo
TEST_VENV := .venv-test
TORCH_CPU := torch==2.13.0
OUT ?= demo_out

.PHONY: demo test setup-demo setup-test bench clean

$(DEMO_VENV)/.done: pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/pip install -q --upgrade pip
	$(DEMO_VENV)/bin/pip install -q -e .
	touch $@

$(TEST_VENV)/.done: pyproject.toml
	$(PYTHON) -m venv $(TEST_VENV)
	$(TEST_VENV)/bin/pip install -q --upgrade pip
	$(TEST_VENV)/bin/pip install -q $(TORCH_CPU)
	$(TEST_VENV)/bin/pip install -q -e ".[test,train,export]"
	touch $@

setup-demo: $(DEMO_VENV)/.done
setup-test: $(TEST_VENV)/.done

demo: setup-demo
	rm -rf $(OUT) && mkdir -p $(OUT)
	$(DEMO_VENV)/bin/python -m ch_numba generate $(OUT)/demo.h5 --sequences 4 --frames 20 --steps-per-frame 400 \
		--size 64 --seed 1 --backend auto
	$(DEMO_VENV)/bin/python -m ch_numba info $(OUT)/demo.h5
	$(DEMO_VENV)/bin/python -m ch_numba render $(OUT)/demo.h5 --sequence 0 --frames 0,1,5,19 --out $(OUT)/pictures
	@echo "demo done: pictures in $(OUT)/pictures (open the .vti files in ParaView)"

test: setup-test
	$(TEST_VENV)/bin/python -m pytest -q

bench: setup-test
	$(TEST_VENV)/bin/python benchmarks/solver.py

clean:
	rm -rf $(DEMO_VENV) $(TEST_VENV) $(OUT)
