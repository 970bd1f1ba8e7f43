"""``perfgate capacity``: the highest arrival rate a service takes while meeting its objectives, with an interval.

:mod:`~perfgate.capacity.search` is the search itself (pure: it asks for steps and decides where to go next),
:mod:`~perfgate.capacity.steps` measures one step (an open-loop Locust run at a steady arrival rate) and runs a
whole search against a served service, and :mod:`~perfgate.capacity.judge` compares a head's capacity with a
baseline's.
"""
