"""Kubernetes-facing: function manifests and the worker's drift check."""
