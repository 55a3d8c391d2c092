"""The ArtPulse contract, shared by the serving runtime, the jobs and the operator.

Names (``constants``), configuration (``settings``), the feature contract (``imaging``,
``features``, ``errors``), the logged model (``classifier``), prediction
events (``events``), the MLflow registry (``registry``) and the retry schedule
(``backoff``). It imports nothing else of ArtPulse and nothing of MLServer.
"""
