"""Labelled image datasets: the synthetic style generator, folder loading and the feature cache."""
