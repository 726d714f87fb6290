"""The one extension point: learner methods (with their arms) and samplers.

A *method* is a learning rule with both engines: a tabular update (the oracle)
and RLlib pieces (an ``Algorithm`` with its config class and learner, plus the
env-runner or connector pieces where it changes collection).  An *arm* is a
named variant of one method (Meta-MAPG's ``ippo``, ``peer_only``, ...), the unit
every comparison is made of.  A *sampler* says how actions are drawn during
collection; it combines with any on-policy method, so a run is
``method x sampler`` (``on_policy`` is today's sampler).  A composition is an arm
of its own, named ``<arm>+<sampler>`` (``ippo+ma_props``): sweeps, reports and
tuned examples take it wherever they take an arm.

Everything that lists methods or arms -- CLI choices and help, the tabular
experiments, sweeps, reports, the ``rllib`` CLI, tuned examples, benchmarks --
asks this module.  Built-in methods are listed in :data:`BUILTIN_METHODS`, one
line each, and loaded on first use; installed packages add theirs through the
``rllib_metamapg.methods`` entry-point group; :func:`register_method` adds one
at run time (a test, a notebook).  This module imports neither Ray nor
torch, and neither does any method's spec module.

Example (one folder, one line)::

    # my_pkg/scaled_pg/method.py
    METHOD = MethodSpec(
        name="scaled_pg", help="PG with a scaled step",
        arms=(ArmSpec("scaled_pg", options={"scale": 2.0}, rllib={"step_scale": 2.0}),),
        tabular="my_pkg.scaled_pg.tabular:ScaledPGTabular",
        algorithm="my_pkg.scaled_pg.algorithm:ScaledPG")

    register_method(METHOD)   # or a line in BUILTIN_METHODS for a built-in
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from rllib_metamapg.errors import UsageError

# name -> "module:attribute" of its MethodSpec.  Adding a built-in method is one line here.
BUILTIN_METHODS: Dict[str, str] = {
    "meta_mapg": "rllib_metamapg.metamapg.method:METHOD",
    "matrl": "rllib_metamapg.matrl.method:METHOD",
    "mappo": "rllib_metamapg.mappo.method:METHOD",
}
# name -> "module:attribute" of its SamplerSpec.
BUILTIN_SAMPLERS: Dict[str, str] = {
    "on_policy": "rllib_metamapg.registry:ON_POLICY",
    "props": "rllib_metamapg.samplers.specs:PROPS",
    "ma_props": "rllib_metamapg.samplers.specs:MA_PROPS",
}

# Installed packages add methods and samplers through this entry-point group.
ENTRY_POINT_GROUP = "rllib_metamapg.methods"

Importable = Union[str, Callable[..., Any], type]


class RegistryError(UsageError):
    """An unknown or clashing method, arm or sampler name; the message lists the choices."""


@dataclass(frozen=True)
class ArmSpec:
    """One named variant of a method.

    Attributes:
        name: Canonical name, unique over every method's arms.
        options: What the method's tabular update and learner read to tell its
            arms apart (Meta-MAPG: ``own``, ``peer``, ``cooldown``).
        rllib: ``config.training(**rllib)`` settings that select this arm.
        aliases: Other accepted spellings.
        help: One line for CLI help and docs.
        handoff: The arm hands back to plain PG at the env's T_warm, which it
            takes as ``handoff_steps`` unless one is given.
        method: Owning method's name (filled in by :func:`register_method`).
        sampler: How this arm collects data (``on_policy`` unless it is an
            ``<arm>+<sampler>`` composition).
        engines: Where it is implemented (``"tabular"``, ``"rllib"``); the other
            engine refuses it by name, and the RLlib side's lists (sweeps, tuned
            examples) leave it out.
        reports: Learner metrics (per module, ``result["learners"][module]``) that
            are > 0 after one training iteration of this arm on RLlib: the evidence
            that its own mechanism ran.  The env suite checks them on every env.
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    rllib: Mapping[str, Any] = field(default_factory=dict)
    aliases: Tuple[str, ...] = ()
    help: str = ""
    handoff: bool = False
    method: str = ""
    sampler: str = "on_policy"
    engines: Tuple[str, ...] = ("tabular", "rllib")
    reports: Tuple[str, ...] = ()

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


@dataclass(frozen=True)
class MethodSpec:
    """A learner method: both engines and its arms.

    Attributes:
        name: Method name (``registry.get_method(name)``, the docs, the report).
        help: One line.
        arms: Its arms; names are unique over the whole registry.
        tabular: Its tabular update, a :class:`~rllib_metamapg.tabular.updates.TabularUpdate`
            subclass (or ``"module:attr"``), run in exact and sampled mode.
        algorithm: Its RLlib ``Algorithm`` subclass (or ``"module:attr"``);
            ``algorithm.get_default_config()`` is its config class.
        rllib_defaults: Method settings every tuned example of this method adds
            to the env's shared PPO settings (Meta-MAPG: ``inner_lr``, ...).
        reference: The arm that is plain independent PG, if the method has one;
            the registry's first such arm is the reference of every paired test.
        on_policy: Whether a sampler such as MA-PROPS can feed it.
        experiments: ``{tabular experiment: arms}`` this method shows by default
            (``metamapg tabular basin`` without ``--arms`` runs every method's).
        paper_results: ``{tabular experiment: {arm: success rate}}`` that the
            method's paper reports, printed beside ours in that experiment's setting.
        settings: The tabular settings only this method reads: a frozen dataclass (or
            ``"module:attr"``) of fields made with
            :func:`rllib_metamapg.tabular.settings.setting`.  They are composed with
            the engine's into ``LearningSettings``, so each becomes a ``metamapg
            tabular`` option, a ``--config`` key and a field of the output record;
            a ``check_settings(self)`` method on it runs in ``validate()``.
    """

    name: str
    help: str
    arms: Tuple[ArmSpec, ...]
    tabular: Importable
    algorithm: Importable
    rllib_defaults: Mapping[str, Any] = field(default_factory=dict)
    reference: Optional[str] = None
    on_policy: bool = True
    experiments: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)
    paper_results: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    settings: Optional[Importable] = None

    def tabular_class(self):
        return load(self.tabular)

    def algorithm_class(self):
        return load(self.algorithm)

    def settings_class(self):
        return None if self.settings is None else load(self.settings)

    @property
    def algorithm_name(self) -> str:
        """The Tune/``rllib train`` name of its algorithm (the class name)."""
        if isinstance(self.algorithm, str):
            return self.algorithm.rsplit(":", 1)[-1].rsplit(".", 1)[-1]
        return self.algorithm.__name__


@dataclass(frozen=True)
class SamplerSpec:
    """How actions are drawn during collection.

    Attributes:
        name: Sampler name.
        help: One line.
        rllib: ``function(config) -> config`` installing its env-runner or
            connector pieces (or ``"module:attr"``), called when the algorithm is
            built; ``None`` changes nothing.
        rllib_check: ``function(config) -> None`` raising ``ValueError`` for
            settings it cannot run with (or ``"module:attr"``), called by the
            config's ``validate()`` -- before Ray starts.
        needs_on_policy: Only methods with ``on_policy=True`` may use it.
        engines: Where it is implemented (``"tabular"``, ``"rllib"``); the other
            engine refuses it by name.
        tabular: ``factory(kind, num_actions, runs, settings, generator)`` (or
            ``"module:attr"``) for the tabular engine's sampled mode on normal-form
            games: an object whose ``counts(logp, batch)`` draws each run's batch of
            joint actions as ``(runs, joint actions)`` counts, ``logp`` being every
            agent's ``(runs, actions)`` log-probabilities; ``settings`` None means
            the sampler's defaults.  ``None`` for ``on_policy`` (the engine draws).
    """

    name: str
    help: str
    rllib: Optional[Importable] = None
    rllib_check: Optional[Importable] = None
    needs_on_policy: bool = True
    engines: Tuple[str, ...] = ("tabular", "rllib")
    tabular: Optional[Importable] = None


ON_POLICY = SamplerSpec("on_policy", "every agent samples from its own current policy",
                        needs_on_policy=False)


def load(obj: Importable):
    """``"package.module:attr"`` -> the object; anything else is returned as it is."""
    if not isinstance(obj, str):
        return obj
    module, _, attr = obj.partition(":")
    if not attr:
        raise RegistryError(f"{obj!r}: write 'package.module:attribute'.")
    target = importlib.import_module(module)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


def _entry_points():
    """``[project.entry-points."rllib_metamapg.methods"]`` of installed packages: each
    names a ``MethodSpec`` (or ``SamplerSpec``), so ``metamapg`` in a fresh process --
    and every Ray worker -- knows a plugin's methods without any import of ours."""
    from importlib.metadata import entry_points

    return list(entry_points(group=ENTRY_POINT_GROUP))


class _Registry:
    def __init__(self):
        self.methods: Dict[str, MethodSpec] = {}
        self.samplers: Dict[str, SamplerSpec] = {}
        self.arms: Dict[str, ArmSpec] = {}
        self.aliases: Dict[str, str] = {}
        self._loaded = False

    def ensure(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # first: a built-in spec module may query the registry
        for path in BUILTIN_METHODS.values():
            self.add_method(load(path))
        for path in BUILTIN_SAMPLERS.values():
            self.add_sampler(load(path))
        for entry in _entry_points():  # installed plugin packages
            spec = entry.load()
            if isinstance(spec, SamplerSpec):
                self.add_sampler(spec)
            else:
                self.add_method(spec)

    def add_method(self, spec: MethodSpec, replace: bool = False) -> MethodSpec:
        if not isinstance(spec, MethodSpec):
            raise RegistryError(f"register_method: expected a MethodSpec, got {spec!r}.")
        if spec.name in self.methods:
            if not replace:
                raise RegistryError(f"method {spec.name!r} is already registered; pass "
                                    "replace=True to replace it.")
            self.remove_method(spec.name)
        if not spec.arms:
            raise RegistryError(f"method {spec.name!r}: give at least one arm.")
        arms = tuple(dataclasses.replace(a, method=spec.name) for a in spec.arms)
        names = [n for a in arms for n in (a.name, *a.aliases)]
        clash = sorted({n for n in names if names.count(n) > 1 or n in self.arms
                        or n in self.aliases})
        if clash:
            raise RegistryError(f"method {spec.name!r}: arm name(s) {clash} are taken; "
                                "arm names are unique over all methods.")
        if spec.reference is not None and spec.reference not in [a.name for a in arms]:
            raise RegistryError(f"method {spec.name!r}: reference={spec.reference!r} is not "
                                "one of its arms.")
        spec = dataclasses.replace(spec, arms=arms)
        self.methods[spec.name] = spec
        for arm in arms:
            self.arms[arm.name] = arm
            self.aliases.update({alias: arm.name for alias in arm.aliases})
        return spec

    def remove_method(self, name: str) -> None:
        spec = self.methods.pop(name)
        for arm in spec.arms:
            self.arms.pop(arm.name, None)
            for alias in arm.aliases:
                self.aliases.pop(alias, None)

    def add_sampler(self, spec: SamplerSpec, replace: bool = False) -> SamplerSpec:
        if spec.name in self.samplers and not replace:
            raise RegistryError(f"sampler {spec.name!r} is already registered.")
        self.samplers[spec.name] = spec
        return spec


_REGISTRY = _Registry()


def register_method(spec: MethodSpec, replace: bool = False) -> MethodSpec:
    """Adds a method and its arms; returns the stored spec (arms know their method)."""
    _REGISTRY.ensure()
    return _REGISTRY.add_method(spec, replace)


def unregister_method(name: str) -> None:
    """Removes a method registered at run time (tests clean up with this)."""
    _REGISTRY.ensure()
    if name not in _REGISTRY.methods:
        raise RegistryError(f"method {name!r} is not registered.")
    _REGISTRY.remove_method(name)


def register_sampler(spec: SamplerSpec, replace: bool = False) -> SamplerSpec:
    _REGISTRY.ensure()
    return _REGISTRY.add_sampler(spec, replace)


def methods() -> Dict[str, MethodSpec]:
    """Registered methods, built-ins first, in registration order."""
    _REGISTRY.ensure()
    return dict(_REGISTRY.methods)


def _lookup(table: Dict[str, Any], kind: str, name: str):
    _REGISTRY.ensure()
    try:
        return table[name]
    except KeyError:
        raise RegistryError(f"{kind}={name!r} is unknown; choose one of "
                            f"{list(table)}.") from None


def get_method(name: str) -> MethodSpec:
    return _lookup(_REGISTRY.methods, "method", name)


def arm_names(method: Optional[str] = None, engine: Optional[str] = None) -> List[str]:
    """Canonical arm names (of one method, or all; implemented in ``engine``, when
    given), in registration order."""
    _REGISTRY.ensure()
    specs = [get_method(method)] if method else _REGISTRY.methods.values()
    return [a.name for m in specs for a in m.arms if engine is None or engine in a.engines]


def arm_choices(engine: Optional[str] = None) -> str:
    """``"ippo (alias pg), own_only, ..."``: for help texts and error messages."""
    _REGISTRY.ensure()
    out = []
    for name in arm_names(engine=engine):
        aliases = _REGISTRY.arms[name].aliases
        out.append(f"{name} (alias {', '.join(aliases)})" if aliases else name)
    return ", ".join(out)


def paper_results(experiment: str) -> Dict[str, float]:
    """``{arm: success rate}`` the methods' papers report for a tabular experiment."""
    _REGISTRY.ensure()
    return {arm: rate for m in _REGISTRY.methods.values()
            for arm, rate in m.paper_results.get(experiment, {}).items()}


def experiment_arms(experiment: str) -> List[str]:
    """Default arms of a tabular experiment: every method's, the reference first."""
    _REGISTRY.ensure()
    names = [a for m in _REGISTRY.methods.values() for a in m.experiments.get(experiment, ())]
    ref = reference_arm()
    return sorted(dict.fromkeys(names), key=lambda a: a != ref)


# Separates an arm from its sampler in a composition's name: ``ippo+ma_props``.
COMPOSITION = "+"


def get_arm(name: str) -> ArmSpec:
    """The arm called ``name`` (or one of its aliases), or the composition
    ``<arm>+<sampler>``: that arm collecting data with that sampler."""
    _REGISTRY.ensure()
    if isinstance(name, str) and COMPOSITION in name:
        return _composition(name)
    key = _REGISTRY.aliases.get(name, name)
    if key not in _REGISTRY.arms:
        raise RegistryError(f"arm={name!r} is unknown; choose one of {arm_choices()}.")
    return _REGISTRY.arms[key]


def _composition(name: str) -> ArmSpec:
    base_name, _, sampler = name.partition(COMPOSITION)
    if COMPOSITION in sampler or not base_name or not sampler:
        raise RegistryError(f"arm={name!r}: a composition is '<arm>{COMPOSITION}<sampler>' "
                            f"(e.g. 'ippo{COMPOSITION}ma_props'); samplers: "
                            f"{list(_REGISTRY.samplers)}.")
    base, spec = get_arm(base_name), get_sampler(sampler)
    check_combination(base, spec.name)
    if spec.name == ON_POLICY.name:
        return base
    return dataclasses.replace(
        base, name=f"{base.name}{COMPOSITION}{spec.name}", aliases=(), sampler=spec.name,
        help=f"{base.help or base.name}, data drawn by the {spec.name} sampler")


def method_package(method: Union[str, "MethodSpec"]) -> str:
    """The dotted package holding a method's pieces: the package of the module that
    defines its algorithm (``rllib_metamapg.matrl`` for MATRL).  Only that package
    may spell the method's arm names; everything else asks the registry."""
    spec = get_method(method) if isinstance(method, str) else method
    target = (spec.algorithm if isinstance(spec.algorithm, str)
              else spec.algorithm.__module__)
    return target.split(":")[0].rsplit(".", 1)[0]


def arm_for_engine(arm: Union[str, ArmSpec], engine: str) -> ArmSpec:
    """The arm, refused by name when it or its sampler is not implemented in ``engine``
    (the engine checks what else it needs, e.g. sampled mode for a composition in the
    tabular one)."""
    spec = get_arm(arm) if isinstance(arm, str) else arm
    if engine not in spec.engines:
        raise RegistryError(f"arm={spec.name!r} is implemented in {list(spec.engines)} "
                            f"only, not in {engine!r}; choose one of "
                            f"{arm_choices(engine)}.")
    if spec.sampler != ON_POLICY.name:
        try:
            check_combination(spec, spec.sampler, engine=engine)
        except RegistryError as err:
            raise RegistryError(f"arm={spec.name!r}: {err}") from None
    return spec


def canonical_arm(name: str) -> str:
    return get_arm(name).name


def parse_arms(names: Sequence[str]) -> List[ArmSpec]:
    """Validates a list of arm names (duplicates refused, aliases resolved), keeping the order."""
    arms = [get_arm(n) for n in names]
    seen = [a.name for a in arms]
    dup = sorted({n for n in seen if seen.count(n) > 1})
    if dup:
        raise RegistryError(f"arms: {dup} listed more than once (aliases count as the same "
                            "arm).")
    if not arms:
        raise RegistryError("arms: give at least one arm.")
    return arms


def method_of(arm: Union[str, ArmSpec]) -> MethodSpec:
    return get_method((get_arm(arm) if isinstance(arm, str) else arm).method)


def reference_arm() -> str:
    """The arm every paired test compares against: plain independent PG (``ippo``)."""
    _REGISTRY.ensure()
    for spec in _REGISTRY.methods.values():
        if spec.reference is not None:
            return spec.reference
    raise RegistryError("no registered method names a reference arm.")


def samplers() -> Dict[str, SamplerSpec]:
    _REGISTRY.ensure()
    return dict(_REGISTRY.samplers)


def get_sampler(name: str) -> SamplerSpec:
    return _lookup(_REGISTRY.samplers, "sampler", name)


def sampler_names(engine: Optional[str] = None) -> List[str]:
    """Registered samplers (implemented in ``engine``, when given)."""
    return [n for n, s in samplers().items() if engine is None or engine in s.engines]


def check_combination(arm: Union[str, ArmSpec], sampler: str = "on_policy",
                      engine: Optional[str] = None) -> None:
    """Refuses a sampler that needs an on-policy learner with an off-policy method, and
    a sampler the engine does not implement."""
    spec, method = get_sampler(sampler), method_of(arm)
    if engine is not None and engine not in spec.engines:
        raise RegistryError(f"sampler={sampler!r} is implemented in {list(spec.engines)} "
                            f"only, not in {engine!r}; choose one of "
                            f"{sampler_names(engine)}.")
    if spec.needs_on_policy and not method.on_policy:
        raise RegistryError(f"sampler={sampler!r} feeds on-policy learners only; method "
                            f"{method.name!r} is not one.")
