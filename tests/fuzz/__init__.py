"""Fuzzing harness: every parser of untrusted bytes raises only trustprov's typed errors.

``engine`` (targets, generation, oracle, watchdog), ``mutate`` (random values and mutations),
``corpus`` and ``chips`` (valid artifacts and chips from a small world of the role tools),
``targets`` (the parsers). The ``test_*`` modules are Hypothesis property tests, one per parser
family; ``fuzz/run.py`` drives the same targets for 100,000 inputs each (``make fuzz``).
"""
