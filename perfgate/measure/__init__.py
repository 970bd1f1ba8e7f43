"""Measuring a run: the service under test, the Locust process and its recorder plugin, and what a run's samples say."""
