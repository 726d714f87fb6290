# Two entry points: `make demo` and `make test`. Both create .venv when missing
# and install with the tested pins in constraints.txt.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
DEMO_OUT ?= demo_out

.PHONY: demo test test-docs test-long test-full test-fast lint bench gpu-check docs clean overcooked meltingpot compare reproduce-rllib reproduce-rllib-clip1 reproduce-rllib-cut8 reproduce-compare-rllib reproduce-ma-props-rllib reproduce-app-f reproduce-app-f-pilot reproduce-lbf-ma-props

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel

$(VENV)/.installed: $(PY) setup.cfg pyproject.toml constraints.txt
	$(PIP) install --quiet -c constraints.txt -e .
	touch $@

# The tests cover Overcooked, so they install it too.
$(VENV)/.installed-test: $(VENV)/.installed-overcooked
	$(PIP) install --quiet -c constraints.txt -e ".[test]"
	touch $@

# overcooked (the NumPy-2 fork of overcooked-ai) and multi-agent-rlenv declare
# pygame and opencv-python, which clash with mpe2's pygame-ce and headless
# OpenCV, so they go in without their dependencies; the ones they do need come
# with the [overcooked] extra.
$(VENV)/.installed-overcooked: $(VENV)/.installed
	$(PIP) install --quiet -c constraints.txt -e ".[overcooked]"
	$(PIP) install --quiet -c constraints.txt --no-deps overcooked multi-agent-rlenv
	touch $@

overcooked: $(VENV)/.installed-overcooked

# dm-meltingpot is an sdist whose build downloads its assets (the bots' and
# scenarios' saved models) from outside the package registry. Substrates do not
# read them, so an empty assets tarball in the place the build looks first lets
# it build offline; bots and scenarios then stay unavailable. It goes in with
# --no-deps for the same reason as overcooked; the [meltingpot] extra brings
# what it needs at run time.
MELTINGPOT_SRC := $(VENV)/meltingpot-src

$(VENV)/.installed-meltingpot: $(VENV)/.installed
	$(PIP) install --quiet -c constraints.txt -e ".[meltingpot]"
	rm -rf $(MELTINGPOT_SRC) && mkdir -p $(MELTINGPOT_SRC)/empty/assets
	$(PIP) download --quiet -c constraints.txt --no-deps --no-binary :all: \
		dm-meltingpot -d $(MELTINGPOT_SRC)
	tar xzf $(MELTINGPOT_SRC)/dm_meltingpot-*.tar.gz -C $(MELTINGPOT_SRC)
	cd $(MELTINGPOT_SRC)/dm-meltingpot-*/ && mkdir -p assets && tar czf \
		assets/meltingpot-assets-$$(sed -n "s/^ASSETS_VERSION = '\(.*\)'/\1/p" setup.py).tar.gz \
		-C ../empty assets
	$(PIP) install --quiet --no-deps $(MELTINGPOT_SRC)/dm-meltingpot-*/
	touch $@

meltingpot: $(VENV)/.installed-meltingpot

# The tabular paired ablation + basin map, then a paired RLlib sweep on Stag Hunt
# (ippo vs peer_only, 10 seeds, the neural study's settings in studies/neural) and
# its report.
demo: $(VENV)/.installed
	$(VENV)/bin/metamapg tabular demo --out $(DEMO_OUT)
	rm -rf $(DEMO_OUT)/sweep
	$(VENV)/bin/metamapg sweep --env stag_hunt --arms ippo,peer_only --seeds 0-9 \
		--tuned-examples studies/neural --name stag_hunt-mlp --max-concurrent 2 \
		--storage-path $(DEMO_OUT)/sweep --quiet --progress-every 30
	$(VENV)/bin/metamapg report $(DEMO_OUT)/sweep/stag_hunt-mlp --out $(DEMO_OUT)/sweep_report

# The neural-policy study (docs/neural_study.md): 5 Meta-MAPG arms x 20 paired seeds
# with RLlib's default MLP modules on Stag Hunt and the IPD (about 20 minutes on 2
# cores), and its controls at the App. E.1 correction clip and rollout. A rerun
# continues the sweeps in $(STUDY_OUT) and rewrites the reports under docs/neural_study/.
STUDY_OUT ?= study_out
STUDY_ARMS := ippo,own_only,peer_only,meta_mapg,handoff
STUDY_SWEEP := $(VENV)/bin/metamapg sweep --tuned-examples studies/neural --seeds 0-19 \
	--max-concurrent 2 --storage-path $(STUDY_OUT) --resume-if-exists --quiet --progress-every 60
reproduce-rllib: $(VENV)/.installed
	$(STUDY_SWEEP) --env stag_hunt --arms $(STUDY_ARMS) --name stag_hunt-mlp
	$(VENV)/bin/metamapg report $(STUDY_OUT)/stag_hunt-mlp --out docs/neural_study/stag_hunt
	$(STUDY_SWEEP) --env ipd --arms $(STUDY_ARMS) --name ipd-mlp
	$(VENV)/bin/metamapg report $(STUDY_OUT)/ipd-mlp --out docs/neural_study/ipd

reproduce-rllib-clip1: $(VENV)/.installed
	$(STUDY_SWEEP) --env stag_hunt --arms ippo,peer_only,meta_mapg --name stag_hunt-mlp-clip1 \
		--config '{"correction_clip": 1.0}'
	$(VENV)/bin/metamapg report $(STUDY_OUT)/stag_hunt-mlp-clip1 --out docs/neural_study/stag_hunt_clip1

# The IPD control at App. E.1's rollout (256 steps = 32 vector envs x 8: every
# 12-round episode reaches the learner as two chunks; docs/neural_study.md).
reproduce-rllib-cut8: $(VENV)/.installed
	$(STUDY_SWEEP) --env ipd --arms $(STUDY_ARMS) --name ipd-mlp-cut8 \
		--config '{"num_envs_per_env_runner": 32, "rollout_fragment_length": "auto", "train_batch_size_per_learner": 256, "minibatch_size": 256}'
	$(VENV)/bin/metamapg report $(STUDY_OUT)/ipd-mlp-cut8 --out docs/neural_study/ipd_cut8

# The method comparison with neural policies (docs/comparison.md, "With neural
# policies"): every RLlib arm of the registry's comparison x the envs of
# studies/compare_rllib x 20 paired seeds, one sweep per env.  Each env's report goes
# to docs/compare_rllib/<env>/ as soon as its sweep ends, then the summary table; a
# rerun continues where it stopped.  `--smoke` is the CI-sized version (make test).
reproduce-compare-rllib: $(VENV)/.installed
	$(VENV)/bin/metamapg study studies/compare_rllib --out $(STUDY_OUT) --quiet

# MA-PROPS's behaviour settings over its paper's grid on games 19-21, by learning
# outcomes (docs/samplers.md): 54 sweeps of 60 trials; resumable like the above.
reproduce-ma-props-rllib: $(VENV)/.installed
	$(VENV)/bin/metamapg study studies/ma_props_rllib --out $(STUDY_OUT) --quiet

# The paper's neural benchmarks (docs/app_f.md): price them first with
# `metamapg study studies/app_f --plan`. The pilot is 75 trials at a tenth of each
# budget; the full study is 625 trials (days on 2 cores; a cluster: cluster/README.md).
# Both need MPE and Overcooked (the test install has them).
reproduce-app-f-pilot: $(VENV)/.installed-test
	$(VENV)/bin/metamapg study studies/app_f_pilot --out $(STUDY_OUT) --quiet

reproduce-app-f: $(VENV)/.installed-test
	$(VENV)/bin/metamapg study studies/app_f --out $(STUDY_OUT) --quiet

# MA-PROPS's own setting at reduced scale (docs/samplers.md): mappo and mappo+ma_props
# beside ippo on Level-Based Foraging, 20 paired seeds. Needs lbforaging (the test
# install has it).
reproduce-lbf-ma-props: $(VENV)/.installed-test
	$(VENV)/bin/metamapg study studies/lbf_ma_props --out $(STUDY_OUT) --quiet

# CI's suite (<= 30 min on 2 cores). The longest checks are marked `full` or `long`:
# each has a CI-sized sibling here; `make test-long` runs the `long` ones (.ci/run does
# too), and `make test-full` runs everything.
test: $(VENV)/.installed-test
	$(PY) -m pytest -q -ra -m "not full and not long" --durations=15

test-long: $(VENV)/.installed-test
	$(PY) -m pytest -q -ra -m "long and not full" --durations=10

# Every code block of README.md and docs/*.md, run at smoke size (METAMAPG_SMOKE=1);
# .ci/run runs this after `make test`.
test-docs: $(VENV)/.installed-test
	$(PY) -m pytest -q -ra -m full tests/test_doc_examples.py --durations=10

test-full: $(VENV)/.installed-test
	$(PY) -m pytest -q -ra

# ruff's settings live in pyproject.toml; CI runs this before the tests.
# ruff, and the import structure: no cycles, imports down the layers
# (tests/test_import_layers.py, a second or so; make test runs it too).
lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -p no:cacheprovider tests/test_import_layers.py

test-fast: $(VENV)/.installed-test
	$(PY) -m pytest -q -ra -m "not slow and not full and not long"

# The method comparison and the alignment atlas (docs/comparison.md); `--quick` runs in
# make test.
compare: $(VENV)/.installed
	$(VENV)/bin/metamapg tabular compare --out results/compare
	$(VENV)/bin/metamapg tabular atlas --out results/atlas

bench: $(VENV)/.installed
	$(PY) benchmarks/tabular.py --out benchmarks/results/tabular.json
	$(PY) benchmarks/learner.py --out benchmarks/results/learner.json
	$(PY) benchmarks/envs.py --out benchmarks/results/envs.json
	$(PY) benchmarks/compare.py --out benchmarks/results/compare.json
	$(PY) benchmarks/sweep.py --out benchmarks/results/sweep.json
	$(PY) benchmarks/estimator_regime.py --out benchmarks/results/estimator_regime.json
	$(PY) benchmarks/startup.py --out benchmarks/results/startup.json
	$(PY) benchmarks/iteration_profile.py --out benchmarks/results/iteration_profile.json
	$(PY) -m rllib_metamapg.doc_figures --write

# The GPU path on this machine (cluster/README.md, "Verified on a GPU"): every method's
# learner CPU vs CUDA, critic_lr through a checkpoint, a paired sweep at 0.33 GPU per
# trial, learner throughput. Without CUDA it runs the CPU half and says so (exit 0).
gpu-check: $(VENV)/.installed-test
	$(PY) benchmarks/gpu_check.py --out benchmarks/results/gpu_check.json
	$(PY) -m rllib_metamapg.doc_figures --write

# Re-renders every measured figure in README.md and docs/*.md from its result JSON
# (rllib_metamapg/doc_figures.py); the test suite fails when they differ.
docs: $(VENV)/.installed
	$(PY) -m rllib_metamapg.doc_figures --write

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
