"""The chaos suite: a seeded schedule of faults over a whole studio (``run.py``), the TCP
proxy it owns (``proxy.py``), and its short run (``test_chaos.py``). A package, so that
``benchmarks/chaos.py`` imports it rather than itself."""
