"""Monitoring: the drift check over prediction events, its report, and retraining on drift."""
