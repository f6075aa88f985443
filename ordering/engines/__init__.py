"""Engines that judge a rule over a whole :class:`~ordering.space.OrderSpace`.

Each engine is one function ``(space, rule, *, bound/timeout) -> SpaceVerdict``:

* :func:`ordering.engines.graph.graph_engine` — near-linear, exact for pure precedence;
* :func:`ordering.engines.smt_space.smt_engine` — z3 over the same sections (a timeout is
  UNKNOWN), and :func:`ordering.engines.smt_space.prove_family` for theorems that hold for
  any number of vCPUs, devices and hot-plug steps;
* :func:`ordering.engines.brute.brute_engine` — every registration order, for tiny spaces
  (the reference the other engines are held to).

They share one reading of the space, :func:`ordering.engines.slots.space_model`: the sections
the space's VM registers, their sort key (phase, priority higher first) and the registration
freedom left (a sequence of stages, each a forest of must-register-before edges, plus the
devices a hot-plug step may unplug and replug after everything).
"""
